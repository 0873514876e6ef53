/* Everything of the portable TFQP kernel core. */
#ifndef TFQP_TFQP_H_
#define TFQP_TFQP_H_

#include "tfqp/bconv2d.h"
#include "tfqp/binarize.h"
#include "tfqp/binary_op.h"
#include "tfqp/bfully_connected.h"
#include "tfqp/bmaxpool2d.h"
#include "tfqp/conv2d_int8.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/formats.h"
#include "tfqp/fully_connected_int8.h"
#include "tfqp/geometry.h"
#include "tfqp/packing.h"
#include "tfqp/op.h"
#include "tfqp/requantize.h"
#include "tfqp/shift_conv2d.h"
#include "tfqp/shift_depthwise_conv2d.h"
#include "tfqp/shift_fully_connected.h"
#include "tfqp/shift_layer.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"
#include "tfqp/unpack.h"

#endif /* TFQP_TFQP_H_ */
