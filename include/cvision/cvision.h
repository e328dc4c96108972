/* cvision: torchvision's pretrained image models, datasets, fine-tuning and evaluation in C.
 * The umbrella header: include this one. */
#ifndef CVISION_H
#define CVISION_H

#include "cvision/core.h"
#include "cvision/model.h"
#include "cvision/image.h"
#include "cvision/data.h"
#include "cvision/dist.h"
#include "cvision/npy.h"
#include "cvision/trainer.h"
#include "cvision/transforms.h"
#include "cvision/weights.h"
#include "cvision/train.h"
#include "cvision/metrics.h"
#include "cvision/analysis.h"
#include "cvision/study.h"

#endif
