/* The generated catalog tables (catalog_data.c). */
#ifndef CV_WEIGHTS_CATALOG_H
#define CV_WEIGHTS_CATALOG_H

#include "cvision/weights.h"

extern const cv_weights_info cv_catalog_data[];
extern const int cv_catalog_data_count;
extern const char *const cv_imagenet_category_names[];

#endif
