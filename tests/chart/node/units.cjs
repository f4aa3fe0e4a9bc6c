// node units.cjs UNIT...: the units Grafana does not know, as a JSON array (exit 0 either
// way). Known: an id of @grafana/data's value formats, or one of its custom forms
// (`suffix:<text>`, `prefix:`, `si:`, `count:`, `currency:`, `time:`, `bool:`).
// @grafana/data reads the browser's language at load: a stand-in navigator.
globalThis.navigator = { language: "en-US", languages: ["en-US"] };
const { getValueFormats } = require("@grafana/data");

const ids = new Set(getValueFormats().flatMap((category) => category.submenu.map((unit) => unit.value)));
const custom = /^(prefix|suffix|si|count|currency|time|bool):/;
const unknown = process.argv.slice(2).filter((unit) => !ids.has(unit) && !custom.test(unit));
console.log(JSON.stringify(unknown));
