/* JSON helpers shared by the report and the CLI: numbers that round-trip exactly. */
#ifndef CV_REPORT_JSON_H
#define CV_REPORT_JSON_H

#include <cjson/cJSON.h>

#include "cvision/metrics.h"

/* A number printed with the fewest digits that read back as the same double (cJSON's own
 * printing keeps 15 digits, which can move a threshold across a score); NaN is null. */
cJSON *cv_json_number(double v);
/* The same digits as text (for CSV): the shortest of %.15g..%.17g that reads back as v. */
void cv_format_double(char buf[40], double v);
cJSON *cv_json_numbers(const double *v, int n);
/* The report with the items of `extra` (an object, consumed; may be NULL) appended. */
char *cv_metrics_report_json_extra(const cv_metrics_result *r, cJSON *extra);

#endif
