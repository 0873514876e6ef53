/* tfq_plus.converters._tfqp_kernels: the host build of micro/kernels on numpy
 * arrays, for verify() and host benchmarks.
 *
 * Every op call goes through the same path as the TFLM/TFLite adapters: the
 * custom options bytes are parsed by the C flexbuffer reader, the tensors are
 * described (type, shape, byte size, zero point) and validated by the op's
 * prepare, the constant tensors by init_table, then eval runs (without the
 * GIL). Arrays are read through the buffer protocol (no numpy headers needed
 * at build time); they must be C-contiguous int8 or int32. Results are new
 * numpy arrays.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "tfqp/tfqp.h"

/* --- helpers -------------------------------------------------------------- */

static PyObject *raise_tfqp(const char *op, const tfqp_error *error) {
  PyErr_Format(PyExc_ValueError, "%s: %s (%s = %lld) [%s]", op,
               error->message ? error->message : "error",
               error->name ? error->name : "?", (long long)error->value,
               tfqp_status_name(error->status));
  return NULL;
}

/* Element type of a buffer from its format string: int8, int32 or other. */
static tfqp_type buffer_type(const Py_buffer *view) {
  const char *format = view->format ? view->format : "B";
  if (*format == '@' || *format == '=' || *format == '<') ++format;
  if (format[0] == '\0' || format[1] != '\0') return TFQP_TYPE_OTHER;
  if (view->itemsize == 1 && format[0] == 'b') return TFQP_TYPE_INT8;
  if (view->itemsize == 4 && (format[0] == 'i' || format[0] == 'l')) return TFQP_TYPE_INT32;
  return TFQP_TYPE_OTHER;
}

/* Acquires a C-contiguous buffer of `obj` and describes it. Returns 0 and
 * sets a Python error on failure. */
static int get_tensor(PyObject *obj, const char *name, int writable, Py_buffer *view,
                      tfqp_tensor *tensor, int32_t zero_point) {
  int32_t dims[TFQP_MAX_RANK];
  int i;
  if (PyObject_GetBuffer(obj, view,
                         PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) != 0) {
    PyErr_Clear();
    PyErr_Format(PyExc_ValueError,
                 "%s must be a C-contiguous numpy array (int8 or int32), got %R", name,
                 (PyObject *)Py_TYPE(obj));
    return 0;
  }
  if (buffer_type(view) == TFQP_TYPE_OTHER) {
    PyErr_Format(PyExc_ValueError, "%s must have dtype int8 or int32, got format '%s'", name,
                 view->format ? view->format : "B");
    PyBuffer_Release(view);
    return 0;
  }
  if (view->ndim > TFQP_MAX_RANK) {
    PyErr_Format(PyExc_ValueError, "%s has rank %d; at most %d is allowed", name, view->ndim,
                 TFQP_MAX_RANK);
    PyBuffer_Release(view);
    return 0;
  }
  for (i = 0; i < view->ndim; ++i) {
    if (view->shape[i] > INT32_MAX) {
      PyErr_Format(PyExc_ValueError, "%s dimension %d is %zd; at most 2^31-1 is allowed", name,
                   i, view->shape[i]);
      PyBuffer_Release(view);
      return 0;
    }
    dims[i] = (int32_t)view->shape[i];
  }
  tfqp_tensor_init(tensor, buffer_type(view), view->ndim, dims, (size_t)view->len, zero_point);
  return 1;
}

static int get_options(PyObject *obj, Py_buffer *view) {
  if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) != 0) {
    PyErr_Clear();
    PyErr_Format(PyExc_ValueError, "options must be bytes (a flexbuffer map), got %R",
                 (PyObject *)Py_TYPE(obj));
    return 0;
  }
  return 1;
}

/* numpy.empty(dims, dtype), with numpy.empty and the two dtypes looked up once */
static PyObject *new_array(int rank, const int32_t *dims, tfqp_type type) {
  static PyObject *empty = NULL, *dtype_int8 = NULL, *dtype_int32 = NULL;
  PyObject *shape, *array = NULL;
  int i;
  if (empty == NULL) {
    PyObject *numpy = PyImport_ImportModule("numpy");
    if (numpy == NULL) return NULL;
    empty = PyObject_GetAttrString(numpy, "empty");
    dtype_int8 = PyObject_CallMethod(numpy, "dtype", "s", "int8");
    dtype_int32 = PyObject_CallMethod(numpy, "dtype", "s", "int32");
    Py_DECREF(numpy);
    if (empty == NULL || dtype_int8 == NULL || dtype_int32 == NULL) return NULL;
  }
  shape = PyTuple_New(rank);
  if (shape == NULL) return NULL;
  for (i = 0; i < rank; ++i) PyTuple_SET_ITEM(shape, i, PyLong_FromLong(dims[i]));
  array = PyObject_CallFunctionObjArgs(empty, shape,
                                       type == TFQP_TYPE_INT8 ? dtype_int8 : dtype_int32, NULL);
  Py_DECREF(shape);
  return array;
}

/* new_array with a writable view of its buffer in *view; NULL (a Python error
 * set) on failure. */
static PyObject *new_array_view(int rank, const int32_t *dims, tfqp_type type,
                                Py_buffer *view) {
  PyObject *array = new_array(rank, dims, type);
  if (array != NULL &&
      PyObject_GetBuffer(array, view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) != 0) {
    Py_DECREF(array);
    array = NULL;
  }
  return array;
}

/* The dims of `t` with the last axis of length `last`, for the output of a
 * per-pixel conversion; returns the number of pixels (rows of the last axis). */
static int32_t pixel_dims(const tfqp_tensor *t, int32_t last, int32_t *dims) {
  int32_t pixels = 1;
  int i;
  for (i = 0; i < t->rank - 1; ++i) {
    dims[i] = t->dims[i];
    pixels *= t->dims[i];
  }
  dims[t->rank - 1] = last;
  return pixels;
}

static int check_zero_point(long value, const char *name) {
  if (value < -128 || value > 127) {
    PyErr_Format(PyExc_ValueError, "%s must be in [-128, 127], got %ld", name, value);
    return 0;
  }
  return 1;
}

/* --- packing --------------------------------------------------------------- */

static PyObject *py_pack(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"values", "zero_point", NULL};
  PyObject *values;
  long zero_point = 0;
  Py_buffer in;
  tfqp_tensor t;
  PyObject *out = NULL;
  Py_buffer outv;
  int32_t dims[TFQP_MAX_RANK];
  int32_t channels, pixels;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|l:pack", keywords, &values, &zero_point)) {
    return NULL;
  }
  if (!check_zero_point(zero_point, "zero_point")) return NULL;
  if (!get_tensor(values, "values", 0, &in, &t, 0)) return NULL;
  if (t.type != TFQP_TYPE_INT8 || t.rank < 1 || t.dims[t.rank - 1] < 1) {
    PyErr_SetString(PyExc_ValueError,
                    "values must be an int8 array of rank >= 1 with >= 1 channel (last axis)");
    PyBuffer_Release(&in);
    return NULL;
  }
  channels = t.dims[t.rank - 1];
  pixels = pixel_dims(&t, TFQP_WORDS(channels), dims);
  out = new_array_view(t.rank, dims, TFQP_TYPE_INT32, &outv);
  if (out != NULL) {
    tfqp_pack_int8((const int8_t *)in.buf, pixels, channels, (int32_t)zero_point,
                   (tfqp_word *)outv.buf);
    PyBuffer_Release(&outv);
  }
  PyBuffer_Release(&in);
  return out;
}

static PyObject *py_unpack(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"packed", "channels", "positive", "negative", NULL};
  PyObject *packed;
  long channels;
  long positive = 1, negative = -1;
  Py_buffer in;
  tfqp_tensor t;
  PyObject *out = NULL;
  Py_buffer outv;
  int32_t dims[TFQP_MAX_RANK];
  int32_t pixels;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Ol|ll:unpack", keywords, &packed, &channels,
                                   &positive, &negative)) {
    return NULL;
  }
  if (positive < -128 || positive > 127 || negative < -128 || negative > 127) {
    PyErr_Format(PyExc_ValueError, "positive and negative must be int8 values, got %ld, %ld",
                 positive, negative);
    return NULL;
  }
  if (channels < 1 || channels > INT32_MAX) {
    PyErr_Format(PyExc_ValueError, "channels must be >= 1, got %ld", channels);
    return NULL;
  }
  if (!get_tensor(packed, "packed", 0, &in, &t, 0)) return NULL;
  if (t.type != TFQP_TYPE_INT32 || t.rank < 1 ||
      t.dims[t.rank - 1] != TFQP_WORDS((int32_t)channels)) {
    PyErr_Format(PyExc_ValueError,
                 "packed must be an int32 array whose last axis has ceil(channels/32) = %d "
                 "words",
                 (int)TFQP_WORDS((int32_t)channels));
    PyBuffer_Release(&in);
    return NULL;
  }
  pixels = pixel_dims(&t, (int32_t)channels, dims);
  out = new_array_view(t.rank, dims, TFQP_TYPE_INT8, &outv);
  if (out != NULL) {
    tfqp_unpack_int8((const tfqp_word *)in.buf, pixels, (int32_t)channels, (int8_t)positive,
                     (int8_t)negative, (int8_t *)outv.buf);
    PyBuffer_Release(&outv);
  }
  PyBuffer_Release(&in);
  return out;
}

/* --- options ---------------------------------------------------------------- */

static int add_int(PyObject *dict, const char *key, int32_t value) {
  PyObject *v = PyLong_FromLong(value);
  int rc;
  if (v == NULL) return -1;
  rc = PyDict_SetItemString(dict, key, v);
  Py_DECREF(v);
  return rc;
}

static PyObject *py_parse_options(PyObject *self, PyObject *args) {
  const char *op;
  PyObject *options;
  Py_buffer ov;
  tfqp_error error;
  tfqp_status status;
  PyObject *dict;
  (void)self;
  if (!PyArg_ParseTuple(args, "sO:parse_options", &op, &options)) return NULL;
  if (!get_options(options, &ov)) return NULL;
  dict = PyDict_New();
  if (dict == NULL) {
    PyBuffer_Release(&ov);
    return NULL;
  }
#define ADD(flag, key, value) \
  if ((present & (flag)) && add_int(dict, key, value) != 0) goto fail;
  if (strcmp(op, "TFQP_BCONV2D") == 0) {
    tfqp_bconv2d_options o;
    uint32_t present;
    status = tfqp_bconv2d_parse_options((const uint8_t *)ov.buf, (size_t)ov.len, &o, &error);
    if (status != TFQP_OK) goto tfqp_fail_;
    present = o.present;
    ADD(TFQP_BCONV2D_CHANNELS_IN, "channels_in", o.channels_in)
    ADD(TFQP_BCONV2D_FILTER_HEIGHT, "filter_height", o.filter_height)
    ADD(TFQP_BCONV2D_FILTER_WIDTH, "filter_width", o.filter_width)
    ADD(TFQP_BCONV2D_STRIDE_HEIGHT, "stride_height", o.stride_height)
    ADD(TFQP_BCONV2D_STRIDE_WIDTH, "stride_width", o.stride_width)
    ADD(TFQP_BCONV2D_DILATION_HEIGHT, "dilation_height_factor", o.dilation_height_factor)
    ADD(TFQP_BCONV2D_DILATION_WIDTH, "dilation_width_factor", o.dilation_width_factor)
    ADD(TFQP_BCONV2D_PADDING, "padding", o.padding)
    ADD(TFQP_BCONV2D_PAD_VALUE, "pad_value", o.pad_value)
    ADD(TFQP_BCONV2D_INPUT_POS, "input_pos", o.input_pos)
    ADD(TFQP_BCONV2D_INPUT_NEG, "input_neg", o.input_neg)
    ADD(TFQP_BCONV2D_ACT_MIN, "act_min", o.act_min)
    ADD(TFQP_BCONV2D_ACT_MAX, "act_max", o.act_max)
  } else if (strcmp(op, "TFQP_BFULLY_CONNECTED") == 0) {
    tfqp_bfully_connected_options o;
    uint32_t present;
    status = tfqp_bfully_connected_parse_options((const uint8_t *)ov.buf, (size_t)ov.len, &o,
                                                 &error);
    if (status != TFQP_OK) goto tfqp_fail_;
    present = o.present;
    ADD(TFQP_BFC_CHANNELS_IN, "channels_in", o.channels_in)
    ADD(TFQP_BFC_INPUT_POS, "input_pos", o.input_pos)
    ADD(TFQP_BFC_INPUT_NEG, "input_neg", o.input_neg)
    ADD(TFQP_BFC_ACT_MIN, "act_min", o.act_min)
    ADD(TFQP_BFC_ACT_MAX, "act_max", o.act_max)
  } else if (strcmp(op, "TFQP_BMAXPOOL2D") == 0) {
    tfqp_bmaxpool2d_options o;
    uint32_t present;
    status = tfqp_bmaxpool2d_parse_options((const uint8_t *)ov.buf, (size_t)ov.len, &o, &error);
    if (status != TFQP_OK) goto tfqp_fail_;
    present = o.present;
    ADD(TFQP_BMAXPOOL2D_CHANNELS, "channels", o.channels)
    ADD(TFQP_BMAXPOOL2D_FILTER_HEIGHT, "filter_height", o.filter_height)
    ADD(TFQP_BMAXPOOL2D_FILTER_WIDTH, "filter_width", o.filter_width)
    ADD(TFQP_BMAXPOOL2D_STRIDE_HEIGHT, "stride_height", o.stride_height)
    ADD(TFQP_BMAXPOOL2D_STRIDE_WIDTH, "stride_width", o.stride_width)
    ADD(TFQP_BMAXPOOL2D_PADDING, "padding", o.padding)
  } else {
    PyErr_Format(PyExc_ValueError,
                 "op must be 'TFQP_BCONV2D', 'TFQP_BFULLY_CONNECTED' or 'TFQP_BMAXPOOL2D', got "
                 "'%s'",
                 op);
    goto fail;
  }
#undef ADD
  PyBuffer_Release(&ov);
  return dict;
tfqp_fail_:
  raise_tfqp(op, &error);
fail:
  PyBuffer_Release(&ov);
  Py_DECREF(dict);
  return NULL;
}

/* --- binary conv / fully connected: prepared ops ----------------------------- */

/* A TFQP_BCONV2D or TFQP_BFULLY_CONNECTED prepared once (options parsed, tensors
 * validated, table built, buffers allocated), then called on inputs of the
 * prepared shape: the life cycle of the op in TFLite Micro. */
typedef struct {
  PyObject_HEAD
  int fully_connected;
  tfqp_bconv2d_params conv;
  tfqp_bfully_connected_params fc;
  tfqp_tensor input;
  int output_rank;
  int32_t output_dims[4];
  tfqp_type output_type;
  void *filter; /* private copy of the packed filter */
  void *table;
  void *scratch;
} PreparedOp;

static void prepared_dealloc(PreparedOp *self) {
  PyMem_Free(self->filter);
  PyMem_Free(self->table);
  PyMem_Free(self->scratch);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *op_name(const PreparedOp *self) {
  return self->fully_connected ? "TFQP_BFULLY_CONNECTED" : "TFQP_BCONV2D";
}

static PyObject *dims_tuple(int rank, const int32_t *dims) {
  PyObject *t = PyTuple_New(rank);
  int i;
  if (t == NULL) return NULL;
  for (i = 0; i < rank; ++i) PyTuple_SET_ITEM(t, i, PyLong_FromLong(dims[i]));
  return t;
}

static PyObject *prepared_call(PreparedOp *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"input", NULL};
  PyObject *input, *out = NULL;
  Py_buffer in, outv;
  tfqp_tensor t, out_t;
  int i, same;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:__call__", keywords, &input)) return NULL;
  if (!get_tensor(input, "input", 0, &in, &t, self->input.zero_point)) return NULL;
  same = t.type == self->input.type && t.rank == self->input.rank && t.bytes == self->input.bytes;
  for (i = 0; same && i < t.rank; ++i) same = t.dims[i] == self->input.dims[i];
  if (!same) {
    PyObject *expected = dims_tuple(self->input.rank, self->input.dims);
    PyErr_Format(PyExc_ValueError,
                 "%s: input must be %s with shape %R as prepared, got format '%s' and rank %d",
                 op_name(self), self->input.type == TFQP_TYPE_INT8 ? "int8" : "int32", expected,
                 in.format ? in.format : "B", in.ndim);
    Py_XDECREF(expected);
    PyBuffer_Release(&in);
    return NULL;
  }
  out = new_array(self->output_rank, self->output_dims, self->output_type);
  if (out == NULL || !get_tensor(out, "output", 1, &outv, &out_t, 0)) {
    Py_XDECREF(out);
    PyBuffer_Release(&in);
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  if (self->fully_connected) {
    tfqp_bfully_connected_eval(&self->fc, (const int32_t *)self->table, in.buf,
                               (const tfqp_word *)self->filter, outv.buf, self->scratch);
  } else {
    tfqp_bconv2d_eval(&self->conv, (const int32_t *)self->table, in.buf,
                      (const tfqp_word *)self->filter, outv.buf, self->scratch);
  }
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&outv);
  PyBuffer_Release(&in);
  return out;
}

static PyObject *prepared_output_shape(PreparedOp *self, void *closure) {
  (void)closure;
  return dims_tuple(self->output_rank, self->output_dims);
}

static PyObject *prepared_input_shape(PreparedOp *self, void *closure) {
  (void)closure;
  return dims_tuple(self->input.rank, self->input.dims);
}

static PyObject *prepared_table_bytes(PreparedOp *self, void *closure) {
  (void)closure;
  return PyLong_FromSize_t(self->fully_connected ? self->fc.table_bytes : self->conv.table_bytes);
}

static PyObject *prepared_scratch_bytes(PreparedOp *self, void *closure) {
  (void)closure;
  return PyLong_FromSize_t(self->fully_connected ? self->fc.scratch_bytes
                                                 : self->conv.scratch_bytes);
}

static PyGetSetDef prepared_getset[] = {
    {"input_shape", (getter)prepared_input_shape, NULL, "shape every input must have", NULL},
    {"output_shape", (getter)prepared_output_shape, NULL, "shape of the outputs", NULL},
    {"table_bytes", (getter)prepared_table_bytes, NULL,
     "bytes of the persistent table (per-channel constants, border sums, repacked filter)",
     NULL},
    {"scratch_bytes", (getter)prepared_scratch_bytes, NULL, "bytes of scratch memory per call",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject PreparedOpType = {
    PyVarObject_HEAD_INIT(NULL, 0) "tfq_plus.converters._tfqp_kernels.PreparedOp", /* name */
    sizeof(PreparedOp), /* basicsize */
    0,                  /* itemsize */
};

/* The output array prepare_op's calls will allocate, as the kernels see it. */
static void describe_output(const PreparedOp *self, long output_zero_point, tfqp_tensor *output) {
  size_t count = 1;
  int i;
  for (i = 0; i < self->output_rank; ++i) count *= (size_t)self->output_dims[i];
  tfqp_tensor_init(output, self->output_type, self->output_rank, self->output_dims,
                   count * (self->output_type == TFQP_TYPE_INT32 ? 4 : 1),
                   (int32_t)output_zero_point);
}

/* Shared by prepare_bconv2d / prepare_bfully_connected. */
static PyObject *prepare_op(int fully_connected, PyObject *args, PyObject *kwargs) {
  static char *conv_keywords[] = {"input",           "filter",           "transform",
                                  "options",         "input_zero_point", "output_zero_point",
                                  "packed_output",   NULL};
  static char *fc_keywords[] = {"input",           "weights",          "transform",
                                "options",         "input_zero_point", "output_zero_point",
                                "packed_output",   NULL};
  const char *op = fully_connected ? "TFQP_BFULLY_CONNECTED" : "TFQP_BCONV2D";
  PyObject *input, *filter, *transform, *options;
  long input_zp = 0, output_zp = 0;
  int packed_output = 0;
  Py_buffer in, fv, tv, ov;
  int have_in = 0, have_f = 0, have_t = 0, have_o = 0;
  tfqp_tensor in_t, f_t, t_t, out_t;
  tfqp_error error;
  tfqp_status status;
  PreparedOp *self = NULL;
  PyObject *result = NULL;
  size_t table_bytes, scratch_bytes;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs,
                                   fully_connected ? "OOOO|$llp:prepare_bfully_connected"
                                                   : "OOOO|$llp:prepare_bconv2d",
                                   fully_connected ? fc_keywords : conv_keywords, &input, &filter,
                                   &transform, &options, &input_zp, &output_zp, &packed_output)) {
    return NULL;
  }
  if (!check_zero_point(input_zp, "input_zero_point") ||
      !check_zero_point(output_zp, "output_zero_point")) {
    return NULL;
  }
  if (!(have_in = get_tensor(input, "input", 0, &in, &in_t, (int32_t)input_zp))) goto done;
  if (!(have_f = get_tensor(filter, fully_connected ? "weights" : "filter", 0, &fv, &f_t, 0)))
    goto done;
  if (!(have_t = get_tensor(transform, "transform", 0, &tv, &t_t, 0))) goto done;
  if (!(have_o = get_options(options, &ov))) goto done;
  self = PyObject_New(PreparedOp, &PreparedOpType);
  if (self == NULL) goto done;
  self->fully_connected = fully_connected;
  self->filter = self->table = self->scratch = NULL;
  self->input = in_t;
  self->output_type = packed_output ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8;
  if (fully_connected) {
    tfqp_bfully_connected_options o;
    self->output_rank = 2;
    status = tfqp_bfully_connected_parse_options((const uint8_t *)ov.buf, (size_t)ov.len, &o,
                                                 &error);
    if (status == TFQP_OK) {
      status = tfqp_bfully_connected_output_dims(&o, &in_t, &f_t, self->output_type,
                                                 self->output_dims, &error);
    }
    if (status == TFQP_OK) {
      describe_output(self, output_zp, &out_t);
      status = tfqp_bfully_connected_prepare(&o, &in_t, &f_t, &t_t, &out_t, &self->fc, &error);
    }
    table_bytes = self->fc.table_bytes;
    scratch_bytes = self->fc.scratch_bytes;
  } else {
    tfqp_bconv2d_options o;
    self->output_rank = 4;
    status = tfqp_bconv2d_parse_options((const uint8_t *)ov.buf, (size_t)ov.len, &o, &error);
    if (status == TFQP_OK) {
      status = tfqp_bconv2d_output_dims(&o, &in_t, &f_t, self->output_type, self->output_dims,
                                        &error);
    }
    if (status == TFQP_OK) {
      describe_output(self, output_zp, &out_t);
      status = tfqp_bconv2d_prepare(&o, &in_t, &f_t, &t_t, &out_t, &self->conv, &error);
    }
    table_bytes = self->conv.table_bytes;
    scratch_bytes = self->conv.scratch_bytes;
  }
  if (status != TFQP_OK) {
    raise_tfqp(op, &error);
    goto done;
  }
  self->filter = PyMem_Malloc((size_t)fv.len > 0 ? (size_t)fv.len : 1);
  self->table = PyMem_Malloc(table_bytes > 0 ? table_bytes : 1);
  self->scratch = PyMem_Malloc(scratch_bytes > 0 ? scratch_bytes : 1);
  if (self->filter == NULL || self->table == NULL || self->scratch == NULL) {
    PyErr_NoMemory();
    goto done;
  }
  memcpy(self->filter, fv.buf, (size_t)fv.len);
  status = fully_connected
               ? tfqp_bfully_connected_init_table(&self->fc, (const tfqp_word *)self->filter,
                                                  (const int32_t *)tv.buf, (int32_t *)self->table,
                                                  table_bytes, &error)
               : tfqp_bconv2d_init_table(&self->conv, (const tfqp_word *)self->filter,
                                         (const int32_t *)tv.buf, (int32_t *)self->table,
                                         table_bytes, &error);
  if (status != TFQP_OK) {
    raise_tfqp(op, &error);
    goto done;
  }
  result = (PyObject *)self;
  self = NULL;
done:
  Py_XDECREF(self);
  if (have_in) PyBuffer_Release(&in);
  if (have_f) PyBuffer_Release(&fv);
  if (have_t) PyBuffer_Release(&tv);
  if (have_o) PyBuffer_Release(&ov);
  return result;
}

/* One-shot call: prepare, then run on the same input. */
static PyObject *run_once(int fully_connected, PyObject *args, PyObject *kwargs) {
  PyObject *op = prepare_op(fully_connected, args, kwargs);
  PyObject *result;
  if (op == NULL) return NULL;
  result = PyObject_CallOneArg(op, PyTuple_GET_ITEM(args, 0));
  Py_DECREF(op);
  return result;
}

/* The module functions of binary op `name`: prepare_<name> (a PreparedOp) and
 * the one-shot <name>. */
#define BINARY_OP_FUNCTIONS(name, fully_connected)                                       \
  static PyObject *py_prepare_##name(PyObject *self, PyObject *args, PyObject *kwargs) { \
    (void)self;                                                                          \
    return prepare_op(fully_connected, args, kwargs);                                    \
  }                                                                                      \
  static PyObject *py_##name(PyObject *self, PyObject *args, PyObject *kwargs) {         \
    (void)self;                                                                          \
    return run_once(fully_connected, args, kwargs);                                      \
  }

BINARY_OP_FUNCTIONS(bconv2d, 0)
BINARY_OP_FUNCTIONS(bfully_connected, 1)
#undef BINARY_OP_FUNCTIONS

static PyObject *py_bmaxpool2d(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"input", "options", NULL};
  static const char *op = "TFQP_BMAXPOOL2D";
  PyObject *input, *options;
  Py_buffer in, ov, outv;
  tfqp_tensor in_t, out_t;
  tfqp_bmaxpool2d_options o;
  tfqp_bmaxpool2d_params p;
  tfqp_error error;
  int32_t dims[4];
  PyObject *out = NULL;
  PyObject *result = NULL;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:bmaxpool2d", keywords, &input, &options)) {
    return NULL;
  }
  if (!get_tensor(input, "input", 0, &in, &in_t, 0)) return NULL;
  if (!get_options(options, &ov)) {
    PyBuffer_Release(&in);
    return NULL;
  }
  if (tfqp_bmaxpool2d_parse_options((const uint8_t *)ov.buf, (size_t)ov.len, &o, &error) !=
          TFQP_OK ||
      tfqp_bmaxpool2d_output_dims(&o, &in_t, dims, &error) != TFQP_OK) {
    raise_tfqp(op, &error);
    goto done;
  }
  out = new_array(4, dims, TFQP_TYPE_INT32);
  if (out == NULL) goto done;
  if (!get_tensor(out, "output", 1, &outv, &out_t, 0)) goto done;
  if (tfqp_bmaxpool2d_prepare(&o, &in_t, &out_t, &p, &error) != TFQP_OK) {
    raise_tfqp(op, &error);
  } else {
    Py_BEGIN_ALLOW_THREADS
    tfqp_bmaxpool2d_eval(&p, (const tfqp_word *)in.buf, (tfqp_word *)outv.buf);
    Py_END_ALLOW_THREADS
    result = out;
    Py_INCREF(result);
  }
  PyBuffer_Release(&outv);
done:
  Py_XDECREF(out);
  PyBuffer_Release(&ov);
  PyBuffer_Release(&in);
  return result;
}

static PyObject *py_kernel_variant(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyUnicode_FromString(tfqp_kernel_variant());
}

/* --- module ------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"pack", (PyCFunction)(void (*)(void))py_pack, METH_VARARGS | METH_KEYWORDS,
     "pack(values, zero_point=0) -> int32 array\n\n"
     "Packs an int8 array [..., C] into [..., ceil(C/32)] words (micro/include/tfqp/formats.h):\n"
     "bit = 1 iff value < zero_point; padding bits 0."},
    {"unpack", (PyCFunction)(void (*)(void))py_unpack, METH_VARARGS | METH_KEYWORDS,
     "unpack(packed, channels, positive=1, negative=-1) -> int8 array\n\n"
     "Unpacks int32 words [..., ceil(channels/32)] into [..., channels]: bit 0 -> positive,\n"
     "bit 1 -> negative; padding bits are ignored."},
    {"parse_options", py_parse_options, METH_VARARGS,
     "parse_options(op, options) -> dict\n\n"
     "Parses custom options (flexbuffer bytes) of op 'TFQP_BCONV2D', 'TFQP_BFULLY_CONNECTED' or\n"
     "'TFQP_BMAXPOOL2D' with the C reader the kernels use; returns the keys given.\n"
     "Raises ValueError for malformed buffers, unknown/duplicate/missing keys, non-integers."},
    {"bconv2d", (PyCFunction)(void (*)(void))py_bconv2d, METH_VARARGS | METH_KEYWORDS,
     "bconv2d(input, filter, transform, options, *, input_zero_point=0, output_zero_point=0,\n"
     "        packed_output=False) -> array\n\n"
     "TFQP_BCONV2D (micro/include/tfqp/bconv2d.h). input: int8 [N,H,W,Cin] (binarized with\n"
     "input_zero_point) or packed int32 [N,H,W,ceil(Cin/32)]; filter: packed int32\n"
     "[Cout,KH,KW,ceil(Cin/32)]; transform: int32 [Cout,4] (W, bias, multiplier, shift) or,\n"
     "with packed_output, [Cout,2] (direction, threshold); options: flexbuffer bytes.\n"
     "Returns int8 [N,OH,OW,Cout] (with output_zero_point) or packed int32\n"
     "[N,OH,OW,ceil(Cout/32)]. Raises ValueError with the C validator's message."},
    {"bfully_connected", (PyCFunction)(void (*)(void))py_bfully_connected,
     METH_VARARGS | METH_KEYWORDS,
     "bfully_connected(input, weights, transform, options, *, input_zero_point=0,\n"
     "                 output_zero_point=0, packed_output=False) -> array\n\n"
     "TFQP_BFULLY_CONNECTED (micro/include/tfqp/bfully_connected.h): input int8 [N,Cin] or\n"
     "packed [N,ceil(Cin/32)], weights packed [Cout,ceil(Cin/32)], transform as bconv2d."},
    {"prepare_bconv2d", (PyCFunction)(void (*)(void))py_prepare_bconv2d,
     METH_VARARGS | METH_KEYWORDS,
     "prepare_bconv2d(input, filter, transform, options, *, input_zero_point=0,\n"
     "                output_zero_point=0, packed_output=False) -> PreparedOp\n\n"
     "Validates and prepares TFQP_BCONV2D once (arguments as bconv2d; `input` fixes the\n"
     "shape and dtype of every later input); call the result on inputs: op(x) -> array."},
    {"prepare_bfully_connected", (PyCFunction)(void (*)(void))py_prepare_bfully_connected,
     METH_VARARGS | METH_KEYWORDS,
     "prepare_bfully_connected(input, weights, transform, options, ...) -> PreparedOp\n\n"
     "As prepare_bconv2d, for TFQP_BFULLY_CONNECTED."},
    {"bmaxpool2d", (PyCFunction)(void (*)(void))py_bmaxpool2d, METH_VARARGS | METH_KEYWORDS,
     "bmaxpool2d(input, options) -> packed int32 array\n\n"
     "TFQP_BMAXPOOL2D (micro/include/tfqp/bmaxpool2d.h) on packed int32 [N,H,W,ceil(C/32)]."},
    {"kernel_variant", py_kernel_variant, METH_NOARGS,
     "kernel_variant() -> str: the compile-time kernel path of this build."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tfqp_kernels",
    "Host build of the TFQP C kernels (micro/kernels) on numpy arrays.", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tfqp_kernels(void) {
  PyObject *m;
  PreparedOpType.tp_dealloc = (destructor)prepared_dealloc;
  PreparedOpType.tp_call = (ternaryfunc)prepared_call;
  PreparedOpType.tp_flags = Py_TPFLAGS_DEFAULT;
  PreparedOpType.tp_doc =
      "A prepared TFQP_BCONV2D / TFQP_BFULLY_CONNECTED: op(input) -> output array.";
  PreparedOpType.tp_getset = prepared_getset;
  if (PyType_Ready(&PreparedOpType) < 0) return NULL;
  m = PyModule_Create(&module);
  if (m == NULL) return NULL;
  Py_INCREF(&PreparedOpType);
  if (PyModule_AddObject(m, "PreparedOp", (PyObject *)&PreparedOpType) < 0) {
    Py_DECREF(&PreparedOpType);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
