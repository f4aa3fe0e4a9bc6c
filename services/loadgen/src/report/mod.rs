//! Being written: the HTML report.
