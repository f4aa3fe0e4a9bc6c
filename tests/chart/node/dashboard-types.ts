// Grafana's published types (@grafana/schema), shaped for dashboards as JSON: the test
// (tests/chart/test_dashboard_types.py) writes each dashboard and each of its panels as a
// typed constant and compiles them with `tsc --strict`, so a wrong enum value, a wrong
// field type or an unknown key in a panel's options or custom field config is an error.
import type { Dashboard, FieldConfig, FieldConfigSource, Panel } from "@grafana/schema";
import type * as Heatmap from "./node_modules/@grafana/schema/dist/types/raw/composable/heatmap/panelcfg/x/types.gen";
import type * as Stat from "./node_modules/@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/types.gen";
import type * as StateTimeline from "./node_modules/@grafana/schema/dist/types/raw/composable/statetimeline/panelcfg/x/types.gen";
import type * as Table from "./node_modules/@grafana/schema/dist/types/raw/composable/table/panelcfg/x/types.gen";
import type * as TimeSeries from "./node_modules/@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/types.gen";

// JSON holds an enum's value, not the enum: `${E}` is the union of a string enum's values.
export type Jsonify<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Jsonify<U>>
      : T extends object
        ? { [K in keyof T]: Jsonify<T[K]> }
        : T;

// Grafana fills in what a dashboard leaves out: every option is optional, none unknown.
export type DeepPartial<T> = T extends Array<infer U>
  ? Array<DeepPartial<U>>
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

// A panel whose options and custom field config are its plugin's.
type Typed<O, F> = Omit<Panel, "options" | "fieldConfig"> & {
  options?: DeepPartial<O>;
  fieldConfig?: Omit<FieldConfigSource, "defaults"> & {
    defaults: Omit<FieldConfig, "custom"> & { custom?: DeepPartial<F> };
  };
};

export type Panels = {
  timeseries: Jsonify<Typed<TimeSeries.Options, TimeSeries.FieldConfig>>;
  stat: Jsonify<Typed<Stat.Options, Record<string, never>>>;
  table: Jsonify<Typed<Table.Options, Table.FieldConfig>>;
  heatmap: Jsonify<Typed<Heatmap.Options, Heatmap.FieldConfig>>;
  "state-timeline": Jsonify<Typed<StateTimeline.Options, StateTimeline.FieldConfig>>;
};

export type DashboardJson = Jsonify<Dashboard>;
