/* cvision: torchvision's pretrained image models, datasets, fine-tuning and evaluation in C.
 * The umbrella header: include this one. */
#ifndef CVISION_H
#define CVISION_H

#include "cvision/core.h"
#include "cvision/metrics.h"

#endif
