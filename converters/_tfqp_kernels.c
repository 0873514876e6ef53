/* tfq_plus.converters._tfqp_kernels: the host build of micro/kernels on numpy
 * arrays, for verify() and host benchmarks.
 *
 * Every op call goes through the C op table (micro/include/tfqp/op.h), the
 * path the TFLM/TFLite adapters take: the row's arity, the custom options bytes
 * parsed by the row (the C flexbuffer reader), the tensors described (type,
 * shape, byte size, zero point) and validated by the row's output_dims and
 * prepare, the constant tensors by init_table, then eval runs (without the
 * GIL). prepare() / run() / ops() are generic; bconv2d, bfully_connected,
 * bmaxpool2d and prepare_bconv2d / prepare_bfully_connected keep their
 * signatures as wrappers, parse_options reads any row's option keys;
 * pack / unpack and pack_codes / unpack_codes are the formats' C conversions.
 * Arrays are read through the buffer protocol (no numpy headers needed
 * at build time); they must be C-contiguous int8 or int32. Results are new
 * numpy arrays.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "tfqp/op.h"
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
  if (view->itemsize == 2 && format[0] == 'h') return TFQP_TYPE_INT16;
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

/* --- coded weights (formats.h) ----------------------------------------------------- */

static int check_code_bits(long bits) {
  if (bits < TFQP_CODE_BITS_MIN || bits > TFQP_CODE_BITS_MAX) {
    PyErr_Format(PyExc_ValueError, "bits must be in [1, 5], got %ld", bits);
    return 0;
  }
  return 1;
}

/* numpy.empty((rows, count), dtype="uint8") with a writable view in *view. */
static PyObject *new_uint8_matrix(int32_t rows, int32_t count, Py_buffer *view) {
  PyObject *numpy = PyImport_ImportModule("numpy");
  PyObject *array;
  if (numpy == NULL) return NULL;
  array = PyObject_CallMethod(numpy, "empty", "((ii)s)", (int)rows, (int)count, "uint8");
  Py_DECREF(numpy);
  if (array != NULL &&
      PyObject_GetBuffer(array, view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) != 0) {
    Py_CLEAR(array);
  }
  return array;
}

static PyObject *py_pack_codes(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"codes", "bits", NULL};
  PyObject *codes, *out = NULL;
  long bits;
  Py_buffer in, outv;
  int32_t dims[2];
  Py_ssize_t i;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Ol:pack_codes", keywords, &codes, &bits) ||
      !check_code_bits(bits)) {
    return NULL;
  }
  if (PyObject_GetBuffer(codes, &in, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
    PyErr_Clear();
    PyErr_SetString(PyExc_ValueError, "codes must be a C-contiguous uint8 array [rows, count]");
    return NULL;
  }
  if (in.ndim != 2 || in.itemsize != 1 || in.format == NULL || strcmp(in.format, "B") != 0 ||
      in.shape[0] < 1 || in.shape[1] < 1 || in.shape[0] > INT32_MAX || in.shape[1] > INT32_MAX) {
    PyErr_SetString(PyExc_ValueError,
                    "codes must be a C-contiguous uint8 array [rows, count], both >= 1");
    PyBuffer_Release(&in);
    return NULL;
  }
  for (i = 0; i < in.len; ++i) {
    if (((const uint8_t *)in.buf)[i] >> bits) {
      PyErr_Format(PyExc_ValueError, "codes must be < 2^%ld, got %d at flat index %zd", bits,
                   (int)((const uint8_t *)in.buf)[i], i);
      PyBuffer_Release(&in);
      return NULL;
    }
  }
  dims[0] = (int32_t)in.shape[0];
  dims[1] = TFQP_CODE_WORDS((int32_t)in.shape[1], (int32_t)bits);
  out = new_array_view(2, dims, TFQP_TYPE_INT32, &outv);
  if (out != NULL) {
    tfqp_pack_codes((const uint8_t *)in.buf, dims[0], (int32_t)in.shape[1], (int32_t)bits,
                    (tfqp_word *)outv.buf);
    PyBuffer_Release(&outv);
  }
  PyBuffer_Release(&in);
  return out;
}

static PyObject *py_unpack_codes(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"words", "bits", "count", NULL};
  PyObject *words, *out = NULL;
  long bits, count;
  Py_buffer in, outv;
  tfqp_tensor t;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oll:unpack_codes", keywords, &words, &bits,
                                   &count) ||
      !check_code_bits(bits)) {
    return NULL;
  }
  if (count < 1 || count > INT32_MAX) {
    PyErr_Format(PyExc_ValueError, "count must be in [1, 2^31 - 1], got %ld", count);
    return NULL;
  }
  if (!get_tensor(words, "words", 0, &in, &t, 0)) return NULL;
  if (t.type != TFQP_TYPE_INT32 || t.rank != 2 ||
      t.dims[1] != TFQP_CODE_WORDS((int32_t)count, (int32_t)bits)) {
    PyErr_Format(PyExc_ValueError,
                 "words must be an int32 array [rows, ceil(count / floor(32 / bits))] = "
                 "[rows, %d]",
                 (int)TFQP_CODE_WORDS((int32_t)count, (int32_t)bits));
    PyBuffer_Release(&in);
    return NULL;
  }
  out = new_uint8_matrix(t.dims[0], (int32_t)count, &outv);
  if (out != NULL) {
    tfqp_unpack_codes((const tfqp_word *)in.buf, t.dims[0], (int32_t)count, (int32_t)bits,
                      (uint8_t *)outv.buf);
    PyBuffer_Release(&outv);
  }
  PyBuffer_Release(&in);
  return out;
}

/* --- the op table ------------------------------------------------------------- */

/* "'A', 'B' or 'C'": the names of every op, for the unknown-op error. */
static void op_names(char *text, size_t size) {
  size_t used = 0;
  int32_t i;
  text[0] = '\0';
  for (i = 0; i < tfqp_op_count && used + 1 < size; ++i) {
    const char *separator = i == 0 ? "" : (i + 1 == tfqp_op_count ? " or " : ", ");
    int n = PyOS_snprintf(text + used, size - used, "%s'%s'", separator, tfqp_ops[i]->name);
    if (n < 0) break;
    used += (size_t)n;
  }
}

/* The row named `name`, or NULL with a ValueError naming every op. */
static const tfqp_op *find_op(const char *name) {
  const tfqp_op *op = tfqp_find_op(name, strlen(name));
  if (op == NULL) {
    char names[512];
    op_names(names, sizeof names);
    PyErr_Format(PyExc_ValueError, "op must be %s, got '%s'", names, name);
  }
  return op;
}

static int add_int(PyObject *dict, const char *key, int32_t value) {
  PyObject *v = PyLong_FromLong(value);
  int rc;
  if (v == NULL) return -1;
  rc = PyDict_SetItemString(dict, key, v);
  Py_DECREF(v);
  return rc;
}

static PyObject *py_parse_options(PyObject *self, PyObject *args) {
  const char *name;
  PyObject *options;
  const tfqp_op *op;
  Py_buffer ov;
  tfqp_op_options parsed;
  tfqp_error error;
  PyObject *dict;
  uint32_t present;
  int32_t i;
  (void)self;
  if (!PyArg_ParseTuple(args, "sO:parse_options", &name, &options)) return NULL;
  if (!get_options(options, &ov)) return NULL;
  if ((op = find_op(name)) == NULL) {
    PyBuffer_Release(&ov);
    return NULL;
  }
  if (op->parse((const uint8_t *)ov.buf, (size_t)ov.len, &parsed, &error) != TFQP_OK) {
    PyBuffer_Release(&ov);
    return raise_tfqp(op->name, &error);
  }
  PyBuffer_Release(&ov);
  dict = PyDict_New();
  if (dict == NULL) return NULL;
  present = tfqp_op_options_present(op, &parsed);
  for (i = 0; i < op->option_count; ++i) {
    if ((present & (1u << i)) &&
        add_int(dict, op->option_keys[i].key, tfqp_op_option_value(op, &parsed, i)) != 0) {
      Py_DECREF(dict);
      return NULL;
    }
  }
  return dict;
}

static PyObject *int_tuple(int32_t count, const int32_t *values) {
  PyObject *t = PyTuple_New(count);
  int32_t i;
  if (t == NULL) return NULL;
  for (i = 0; i < count; ++i) {
    PyObject *v = PyLong_FromLong(values[i]);
    if (v == NULL) {
      Py_DECREF(t);
      return NULL;
    }
    PyTuple_SET_ITEM(t, i, v);
  }
  return t;
}

static PyObject *py_ops(PyObject *self, PyObject *unused) {
  PyObject *list = PyList_New(0);
  int32_t i, j;
  (void)self;
  (void)unused;
  if (list == NULL) return NULL;
  for (i = 0; i < tfqp_op_count; ++i) {
    const tfqp_op *op = tfqp_ops[i];
    int32_t constants[TFQP_OP_MAX_INPUTS], constant_count = 0;
    PyObject *roles = PyTuple_New(op->max_inputs);
    PyObject *keys = PyTuple_New(op->option_count);
    PyObject *entry = NULL;
    if (roles == NULL || keys == NULL) goto fail;
    for (j = 0; j < op->max_inputs; ++j) {
      PyObject *role = PyUnicode_FromString(op->input_roles[j]);
      if (role == NULL) goto fail;
      PyTuple_SET_ITEM(roles, j, role);
      if (op->constant_inputs & (1u << j)) constants[constant_count++] = j;
    }
    for (j = 0; j < op->option_count; ++j) {
      PyObject *key = PyUnicode_FromString(op->option_keys[j].key);
      if (key == NULL) goto fail;
      PyTuple_SET_ITEM(keys, j, key);
    }
    entry = Py_BuildValue("{s:s,s:i,s:i,s:i,s:N,s:O,s:O}", "name", op->name, "min_inputs",
                          (int)op->min_inputs, "max_inputs", (int)op->max_inputs, "outputs",
                          (int)op->outputs, "constant_inputs",
                          int_tuple(constant_count, constants), "input_roles", roles,
                          "option_keys", keys);
    Py_DECREF(roles);
    Py_DECREF(keys);
    if (entry == NULL || PyList_Append(list, entry) != 0) {
      Py_XDECREF(entry);
      Py_DECREF(list);
      return NULL;
    }
    Py_DECREF(entry);
    continue;
  fail:
    Py_XDECREF(roles);
    Py_XDECREF(keys);
    Py_DECREF(list);
    return NULL;
  }
  return list;
}

/* --- prepared ops --------------------------------------------------------------- */

/* Any TFQP op prepared once (options parsed, tensors validated, table built,
 * buffers allocated, constant inputs copied), then called on new values of its
 * non-constant inputs, of the prepared shape: the op's life cycle in TFLite
 * Micro, through the op table. */
typedef struct {
  PyObject_HEAD
  const tfqp_op *op;
  tfqp_op_params params;
  int32_t input_count;
  tfqp_tensor inputs[TFQP_OP_MAX_INPUTS]; /* as prepared */
  void *constants[TFQP_OP_MAX_INPUTS];   /* private copies of the constant inputs */
  int output_rank;
  int32_t output_dims[TFQP_MAX_RANK];
  tfqp_type output_type;
  size_t table_bytes;
  size_t scratch_bytes;
  void *table;   /* cache-line aligned into table_block */
  void *scratch; /* cache-line aligned into scratch_block */
  void *table_block;
  void *scratch_block;
} PreparedOp;

/* Table and scratch start on a cache line (64 bytes): the vector kernels' data
 * then never depends on where the allocator happened to put it. */
#define BUFFER_ALIGNMENT 64

static void *aligned_block(size_t bytes, void **block) {
  *block = PyMem_Malloc((bytes > 0 ? bytes : 1) + BUFFER_ALIGNMENT - 1);
  if (*block == NULL) return NULL;
  return (void *)(((uintptr_t)*block + BUFFER_ALIGNMENT - 1) &
                  ~(uintptr_t)(BUFFER_ALIGNMENT - 1));
}

static void prepared_dealloc(PreparedOp *self) {
  int32_t i;
  for (i = 0; i < TFQP_OP_MAX_INPUTS; ++i) PyMem_Free(self->constants[i]);
  PyMem_Free(self->table_block);
  PyMem_Free(self->scratch_block);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *dims_tuple(int rank, const int32_t *dims) { return int_tuple(rank, dims); }

static int is_constant(const PreparedOp *self, int32_t i) {
  return (self->op->constant_inputs >> i) & 1u;
}

/* Evaluates the op on `values[i]` for its non-constant inputs (in order);
 * returns the new output array. */
static PyObject *prepared_run(PreparedOp *self, PyObject *const *values, Py_ssize_t count) {
  Py_buffer views[TFQP_OP_MAX_INPUTS], outv;
  const void *ins[TFQP_OP_MAX_INPUTS];
  void *outs[TFQP_OP_MAX_OUTPUTS];
  int have[TFQP_OP_MAX_INPUTS] = {0};
  PyObject *out = NULL;
  tfqp_tensor t, out_t;
  Py_ssize_t used = 0;
  int32_t i, k;
  for (i = 0; i < self->input_count; ++i) {
    const tfqp_tensor *expected = &self->inputs[i];
    const char *role = self->op->input_roles[i];
    int same;
    if (is_constant(self, i)) {
      ins[i] = self->constants[i];
      continue;
    }
    if (used >= count) {
      PyErr_Format(PyExc_TypeError, "%s: missing %s", self->op->name, role);
      goto done;
    }
    if (!get_tensor(values[used++], role, 0, &views[i], &t, expected->zero_point)) goto done;
    have[i] = 1;
    same = t.type == expected->type && t.rank == expected->rank && t.bytes == expected->bytes;
    for (k = 0; same && k < t.rank; ++k) same = t.dims[k] == expected->dims[k];
    if (!same) {
      PyObject *shape = dims_tuple(expected->rank, expected->dims);
      PyErr_Format(PyExc_ValueError,
                   "%s: %s must be %s with shape %R as prepared, got format '%s' and rank %d",
                   self->op->name, role, expected->type == TFQP_TYPE_INT8 ? "int8" : "int32",
                   shape, views[i].format ? views[i].format : "B", views[i].ndim);
      Py_XDECREF(shape);
      goto done;
    }
    ins[i] = views[i].buf;
  }
  if (used != count) {
    PyErr_Format(PyExc_TypeError, "%s: takes %zd non-constant inputs, got %zd", self->op->name,
                 used, count);
    goto done;
  }
  out = new_array(self->output_rank, self->output_dims, self->output_type);
  if (out == NULL) goto done;
  if (!get_tensor(out, "output", 1, &outv, &out_t, 0)) {
    Py_CLEAR(out);
    goto done;
  }
  outs[0] = outv.buf;
  Py_BEGIN_ALLOW_THREADS
  self->op->eval(&self->params, (const int32_t *)self->table, ins, outs, self->scratch);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&outv);
done:
  for (i = 0; i < self->input_count; ++i) {
    if (have[i]) PyBuffer_Release(&views[i]);
  }
  return out;
}

static PyObject *prepared_call(PreparedOp *self, PyObject *args, PyObject *kwargs) {
  PyObject *values[TFQP_OP_MAX_INPUTS];
  Py_ssize_t count = PyTuple_GET_SIZE(args), i;
  int32_t j;
  if (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0) {
    if (count > TFQP_OP_MAX_INPUTS) count = TFQP_OP_MAX_INPUTS + 1;
    for (i = 0; i < count && i < TFQP_OP_MAX_INPUTS; ++i) values[i] = PyTuple_GET_ITEM(args, i);
    if (count > TFQP_OP_MAX_INPUTS) {
      PyErr_Format(PyExc_TypeError, "%s: too many inputs", self->op->name);
      return NULL;
    }
    return prepared_run(self, values, count);
  }
  /* keywords: the non-constant inputs by role ("input"), after the positional ones */
  {
    Py_ssize_t given = PyDict_GET_SIZE(kwargs), taken = 0, n = 0;
    for (j = 0; j < self->input_count; ++j) {
      if (is_constant(self, j)) continue;
      if (n < count) {
        values[n] = PyTuple_GET_ITEM(args, n);
      } else {
        PyObject *v = PyDict_GetItemString(kwargs, self->op->input_roles[j]);
        if (v == NULL) break;
        values[n] = v;
        ++taken;
      }
      ++n;
    }
    if (taken != given || count > n) {
      PyErr_Format(PyExc_TypeError, "%s: unexpected arguments (inputs are passed by position "
                   "or by role)", self->op->name);
      return NULL;
    }
    return prepared_run(self, values, n);
  }
}

static PyObject *prepared_output_shape(PreparedOp *self, void *closure) {
  (void)closure;
  return dims_tuple(self->output_rank, self->output_dims);
}

static PyObject *prepared_input_shape(PreparedOp *self, void *closure) {
  (void)closure;
  return dims_tuple(self->inputs[0].rank, self->inputs[0].dims);
}

static PyObject *prepared_table_bytes(PreparedOp *self, void *closure) {
  (void)closure;
  return PyLong_FromSize_t(self->table_bytes);
}

static PyObject *prepared_scratch_bytes(PreparedOp *self, void *closure) {
  (void)closure;
  return PyLong_FromSize_t(self->scratch_bytes);
}

static PyObject *prepared_op_name(PreparedOp *self, void *closure) {
  (void)closure;
  return PyUnicode_FromString(self->op->name);
}

static PyGetSetDef prepared_getset[] = {
    {"op", (getter)prepared_op_name, NULL, "the op's name (\"TFQP_BCONV2D\")", NULL},
    {"input_shape", (getter)prepared_input_shape, NULL, "shape every input 0 must have", NULL},
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

/* The life cycle up to eval: arity, tensors (input 0 with input_zp), options,
 * output_dims, prepare, private copies of the constant inputs, init_table.
 * Errors: a ValueError with the op's message. */
static PreparedOp *prepare_core(const tfqp_op *op, PyObject *const *inputs, Py_ssize_t count,
                                PyObject *options, tfqp_type output_type, long input_zp,
                                long output_zp) {
  Py_buffer views[TFQP_OP_MAX_INPUTS], ov;
  int have[TFQP_OP_MAX_INPUTS] = {0}, have_o = 0;
  tfqp_tensor descs[TFQP_OP_MAX_INPUTS], output;
  tfqp_op_options parsed;
  tfqp_op_buffers buffers;
  tfqp_error error;
  tfqp_status status;
  PreparedOp *self = NULL, *result = NULL;
  int32_t i, rank = 0;
  size_t elements = 1;
  if (tfqp_op_check_arity(op, (int32_t)(count > INT32_MAX ? INT32_MAX : count), 1, &error) !=
      TFQP_OK) {
    raise_tfqp(op->name, &error);
    return NULL;
  }
  for (i = 0; i < (int32_t)count; ++i) {
    if (!(have[i] = get_tensor(inputs[i], op->input_roles[i], 0, &views[i], &descs[i],
                               i == 0 ? (int32_t)input_zp : 0))) {
      goto done;
    }
  }
  if (!(have_o = get_options(options, &ov))) goto done;
  self = PyObject_New(PreparedOp, &PreparedOpType);
  if (self == NULL) goto done;
  self->op = op;
  self->input_count = (int32_t)count;
  self->table = self->scratch = self->table_block = self->scratch_block = NULL;
  for (i = 0; i < TFQP_OP_MAX_INPUTS; ++i) self->constants[i] = NULL;
  for (i = 0; i < (int32_t)count; ++i) {
    const size_t align = descs[i].type == TFQP_TYPE_INT32 ? 4 : descs[i].type == TFQP_TYPE_INT16 ? 2 : 1;
    self->inputs[i] = descs[i];
    /* a constant's data lets prepare size a smaller table (tfqp/tensor.h) */
    if (is_constant(self, i) && ((uintptr_t)views[i].buf % align) == 0) {
      self->inputs[i].data = views[i].buf;
    }
  }
  self->output_type = output_type;
  status = op->parse((const uint8_t *)ov.buf, (size_t)ov.len, &parsed, &error);
  if (status == TFQP_OK) {
    status = op->output_dims(&parsed, self->inputs, self->input_count, output_type, &rank,
                             self->output_dims, &error);
  }
  if (status == TFQP_OK) {
    self->output_rank = rank;
    for (i = 0; i < rank; ++i) elements *= (size_t)self->output_dims[i];
    tfqp_tensor_init(&output, output_type, rank, self->output_dims,
                     elements * (output_type == TFQP_TYPE_INT32 ? 4 : 1), (int32_t)output_zp);
    status = op->prepare(&parsed, self->inputs, self->input_count, &output, &self->params,
                         &buffers, &error);
  }
  if (status != TFQP_OK) {
    raise_tfqp(op->name, &error);
    goto done;
  }
  /* the views are released below: keep no pointer into them */
  for (i = 0; i < (int32_t)count; ++i) self->inputs[i].data = NULL;
  self->table_bytes = buffers.table_bytes;
  self->scratch_bytes = buffers.scratch_bytes;
  for (i = 0; i < (int32_t)count; ++i) {
    if (!is_constant(self, i)) continue;
    self->constants[i] = PyMem_Malloc(views[i].len > 0 ? (size_t)views[i].len : 1);
    if (self->constants[i] == NULL) {
      PyErr_NoMemory();
      goto done;
    }
    memcpy(self->constants[i], views[i].buf, (size_t)views[i].len);
  }
  self->table = aligned_block(self->table_bytes, &self->table_block);
  self->scratch = aligned_block(self->scratch_bytes, &self->scratch_block);
  if (self->table == NULL || self->scratch == NULL) {
    PyErr_NoMemory();
    goto done;
  }
  /* init_table validates the constants even when the op keeps no table */
  if (op->init_table != NULL &&
      op->init_table(&self->params, (const void *const *)self->constants,
                     self->table_bytes > 0 ? (int32_t *)self->table : NULL, self->table_bytes,
                     &error) != TFQP_OK) {
    raise_tfqp(op->name, &error);
    goto done;
  }
  result = self;
  self = NULL;
done:
  Py_XDECREF(self);
  for (i = 0; i < (int32_t)count; ++i) {
    if (have[i]) PyBuffer_Release(&views[i]);
  }
  if (have_o) PyBuffer_Release(&ov);
  return result;
}

/* Runs a freshly prepared op on the non-constant ones of `inputs`. */
static PyObject *run_prepared(PreparedOp *op, PyObject *const *inputs, Py_ssize_t count) {
  PyObject *values[TFQP_OP_MAX_INPUTS];
  Py_ssize_t n = 0;
  int32_t i;
  PyObject *result;
  if (op == NULL) return NULL;
  for (i = 0; i < (int32_t)count; ++i) {
    if (!is_constant(op, i)) values[n++] = inputs[i];
  }
  result = prepared_run(op, values, n);
  Py_DECREF(op);
  return result;
}

/* output_type: "int8" / "int32", a numpy dtype or scalar type. */
static int parse_output_type(PyObject *obj, tfqp_type *type) {
  PyObject *numpy, *dtype = NULL, *name = NULL;
  const char *text;
  *type = TFQP_TYPE_OTHER;
  numpy = PyImport_ImportModule("numpy");
  if (numpy != NULL) {
    dtype = PyObject_CallMethod(numpy, "dtype", "O", obj);
    Py_DECREF(numpy);
  }
  if (dtype != NULL) name = PyObject_GetAttrString(dtype, "name");
  Py_XDECREF(dtype);
  if (name != NULL && (text = PyUnicode_AsUTF8(name)) != NULL) {
    if (strcmp(text, "int8") == 0) *type = TFQP_TYPE_INT8;
    if (strcmp(text, "int32") == 0) *type = TFQP_TYPE_INT32;
  }
  Py_XDECREF(name);
  PyErr_Clear();
  if (*type == TFQP_TYPE_OTHER) {
    PyErr_Format(PyExc_ValueError, "output_type must be int8 or int32, got %R", obj);
    return 0;
  }
  return 1;
}

/* Arguments of prepare() / run(): op, inputs (a sequence), options, *,
 * output_type, input_zero_point=0, output_zero_point=0. */
static PreparedOp *generic_prepare(PyObject *args, PyObject *kwargs, const char *format) {
  static char *keywords[] = {"op",          "inputs",           "options", "output_type",
                             "input_zero_point", "output_zero_point", NULL};
  const char *name;
  PyObject *inputs, *options, *type_obj, *sequence;
  long input_zp = 0, output_zp = 0;
  const tfqp_op *op;
  tfqp_type output_type;
  PreparedOp *prepared;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &name, &inputs, &options,
                                   &type_obj, &input_zp, &output_zp)) {
    return NULL;
  }
  if ((op = find_op(name)) == NULL || !parse_output_type(type_obj, &output_type) ||
      !check_zero_point(input_zp, "input_zero_point") ||
      !check_zero_point(output_zp, "output_zero_point")) {
    return NULL;
  }
  sequence = PySequence_Fast(inputs, "inputs must be a sequence of arrays");
  if (sequence == NULL) return NULL;
  prepared = prepare_core(op, PySequence_Fast_ITEMS(sequence), PySequence_Fast_GET_SIZE(sequence),
                          options, output_type, input_zp, output_zp);
  Py_DECREF(sequence);
  return prepared;
}

static PyObject *py_prepare(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  return (PyObject *)generic_prepare(args, kwargs, "sOO|$Oll:prepare");
}

static PyObject *py_run(PyObject *self, PyObject *args, PyObject *kwargs) {
  PreparedOp *op;
  PyObject *sequence, *result;
  (void)self;
  op = generic_prepare(args, kwargs, "sOO|$Oll:run");
  if (op == NULL) return NULL;
  sequence = PySequence_Fast(PyTuple_GET_ITEM(args, 1), "inputs must be a sequence of arrays");
  if (sequence == NULL) {
    Py_DECREF(op);
    return NULL;
  }
  result = run_prepared(op, PySequence_Fast_ITEMS(sequence), PySequence_Fast_GET_SIZE(sequence));
  Py_DECREF(sequence);
  return result;
}

/* --- the binary ops' own functions (through the table) --------------------------- */

/* prepare_bconv2d / prepare_bfully_connected and the one-shot bconv2d /
 * bfully_connected: their historical signatures over the generic path. */
static PreparedOp *binary_prepare(const char *name, int fully_connected, PyObject *args,
                                  PyObject *kwargs, PyObject **input) {
  static char *conv_keywords[] = {"input",           "filter",           "transform",
                                  "options",         "input_zero_point", "output_zero_point",
                                  "packed_output",   NULL};
  static char *fc_keywords[] = {"input",           "weights",          "transform",
                                "options",         "input_zero_point", "output_zero_point",
                                "packed_output",   NULL};
  PyObject *inputs[3], *options;
  long input_zp = 0, output_zp = 0;
  int packed_output = 0;
  const tfqp_op *op;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs,
                                   fully_connected ? "OOOO|$llp:prepare_bfully_connected"
                                                   : "OOOO|$llp:prepare_bconv2d",
                                   fully_connected ? fc_keywords : conv_keywords, &inputs[0],
                                   &inputs[1], &inputs[2], &options, &input_zp, &output_zp,
                                   &packed_output)) {
    return NULL;
  }
  if (!check_zero_point(input_zp, "input_zero_point") ||
      !check_zero_point(output_zp, "output_zero_point") || (op = find_op(name)) == NULL) {
    return NULL;
  }
  *input = inputs[0];
  return prepare_core(op, inputs, 3, options, packed_output ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8,
                      input_zp, output_zp);
}

#define BINARY_OP_FUNCTIONS(name, op_name, fully_connected)                              \
  static PyObject *py_prepare_##name(PyObject *self, PyObject *args, PyObject *kwargs) { \
    PyObject *input;                                                                     \
    (void)self;                                                                          \
    return (PyObject *)binary_prepare(op_name, fully_connected, args, kwargs, &input);   \
  }                                                                                      \
  static PyObject *py_##name(PyObject *self, PyObject *args, PyObject *kwargs) {         \
    PyObject *input = NULL;                                                              \
    PreparedOp *op = binary_prepare(op_name, fully_connected, args, kwargs, &input);     \
    (void)self;                                                                          \
    return run_prepared(op, &input, 1);                                                  \
  }

BINARY_OP_FUNCTIONS(bconv2d, "TFQP_BCONV2D", 0)
BINARY_OP_FUNCTIONS(bfully_connected, "TFQP_BFULLY_CONNECTED", 1)
#undef BINARY_OP_FUNCTIONS

static PyObject *py_bmaxpool2d(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"input", "options", NULL};
  PyObject *input, *options;
  const tfqp_op *op;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:bmaxpool2d", keywords, &input, &options)) {
    return NULL;
  }
  if ((op = find_op("TFQP_BMAXPOOL2D")) == NULL) return NULL;
  return run_prepared(prepare_core(op, &input, 1, options, TFQP_TYPE_INT32, 0, 0), &input, 1);
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
    {"pack_codes", (PyCFunction)(void (*)(void))py_pack_codes, METH_VARARGS | METH_KEYWORDS,
     "pack_codes(codes, bits) -> int32 array\n\n"
     "Packs uint8 codes [rows, count] (each < 2^bits, bits in 1..5) into rows of\n"
     "ceil(count / floor(32 / bits)) words (micro/include/tfqp/formats.h, coded weights)."},
    {"unpack_codes", (PyCFunction)(void (*)(void))py_unpack_codes,
     METH_VARARGS | METH_KEYWORDS,
     "unpack_codes(words, bits, count) -> uint8 array\n\n"
     "Unpacks int32 words [rows, ceil(count / floor(32 / bits))] into codes [rows, count];\n"
     "padding bits are ignored."},
    {"parse_options", py_parse_options, METH_VARARGS,
     "parse_options(op, options) -> dict\n\n"
     "Parses custom options (flexbuffer bytes) of any op of the table (see ops()) with the C\n"
     "reader the kernels use; returns the keys given.\n"
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
    {"prepare", (PyCFunction)(void (*)(void))py_prepare, METH_VARARGS | METH_KEYWORDS,
     "prepare(op, inputs, options, *, output_type, input_zero_point=0, output_zero_point=0)\n"
     "    -> PreparedOp\n\n"
     "Any TFQP op of the C op table (see ops()): validates and prepares it once. op: its name;\n"
     "inputs: a sequence of C-contiguous int8/int32 arrays in the op's input order (input 0 an\n"
     "int8 tensor with zero point input_zero_point, or int32); options: flexbuffer bytes;\n"
     "output_type: 'int8' or 'int32' (or the numpy dtype); output_zero_point: an int8 output's.\n"
     "The constant inputs are copied; call the result on new values of the non-constant\n"
     "inputs (same shape and dtype): op(input) -> array. Raises ValueError with the C\n"
     "validator's message."},
    {"run", (PyCFunction)(void (*)(void))py_run, METH_VARARGS | METH_KEYWORDS,
     "run(op, inputs, options, *, output_type, input_zero_point=0, output_zero_point=0)\n"
     "    -> array\n\n"
     "prepare(...) and one call on the same inputs."},
    {"ops", py_ops, METH_NOARGS,
     "ops() -> list of dict\n\n"
     "Every op of the C op table: name, min_inputs, max_inputs, outputs, constant_inputs\n"
     "(indices), input_roles, option_keys (in the order of the op's options struct)."},
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
      "A prepared TFQP op: op(input) -> output array (the op's non-constant inputs).";
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
