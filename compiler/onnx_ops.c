/*
 * onnx_ops.c - one ONNX node as model text: the table of the operators
 * gradc imports (ops[], by ONNX name) and the plain ones - elementwise,
 * reductions, shapes, indexing - with onnx_layers.c's for the layers.
 * Shapes, Constant and the integer arithmetic PyTorch emits around Reshape
 * (Shape -> Gather -> Unsqueeze -> Concat) are folded here, with the batch
 * as a marker, into the literal shapes gradc's reshape takes.  Any other
 * operator is refused with its name, node and opset.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static void op_unary(Importer *im, const Onnx__NodeProto *n, const char *fn) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  ox_copy_shape(r, x);
  const char *id = x->nhwc ? x->id : ox_nchw(im, x);
  ox_define(im, r, x->nhwc, "%s(%s)", fn, id);
}

static void op_binary(Importer *im, const Onnx__NodeProto *n, const char *sym, const char *fn) {
  if (n->n_input != 2) ox_fail(im, "%zu inputs; gradc imports this operator with 2", n->n_input);
  Value *x = ox_input(im, n, 0, true), *y = ox_input(im, n, 1, true), *r = ox_output(im, n);
  ox_broadcast(im, x, y, r);
  r->is_int = x->is_int && y->is_int;
  /* Both stored NHWC, or one a scalar: the layout carries over. */
  bool keep = (x->nhwc && (y->nhwc || y->count == 1)) || (y->nhwc && x->count == 1 && x->is_const);
  const char *a = keep && x->nhwc ? x->id : ox_nchw(im, x), *b = keep && y->nhwc ? y->id : ox_nchw(im, y);
  if (sym) ox_define(im, r, keep, "%s %s %s", a, sym, b);
  else ox_define(im, r, keep, "%s(%s, %s)", fn, a, b);
}

static void reshape_to(Importer *im, Value *x, Value *r, int rank, const int64_t *dim) {
  r->rank = rank;
  memcpy(r->dim, dim, sizeof(int64_t) * (size_t)rank);
  r->is_int = x->is_int;
  if (x->is_const && x->is_int) {        /* folded: the same integers */
    r->is_const = true, r->count = x->count, r->i = x->i;
    return;
  }
  /* At most one dimension is left to gradc (-1): the batch, if any. */
  int64_t lit[OX_RANK];
  bool minus = false;
  for (int k = 0; k < rank; k++) {
    lit[k] = dim[k];
    if (dim[k] == BATCH && !minus) lit[k] = -1, minus = true;
  }
  char l[300];
  ox_list_text(lit, rank, l, sizeof l);
  ox_define(im, r, false, "reshape(%s, %s)", ox_nchw(im, x), l);
}

/* a * b for element counts (both >= 0), refused past 2^40 rather than
 * wrapped: dimensions come from the file. */
static int64_t mul(Importer *im, int64_t a, int64_t b) {
  if (a < 0 || b < 0 || (b && a > (INT64_C(1) << 40) / b)) ox_fail(im, "a tensor of more than 2^40 elements");
  return a * b;
}

static void op_flatten(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int axis = ox_axis_of(im, ox_attr_int(n, "axis", 1), x->rank + 1);
  int64_t d[2] = {1, 1};
  for (int k = 0; k < x->rank; k++) {
    int64_t *t = &d[k >= axis];
    if (x->dim[k] == BATCH || *t == BATCH) *t = BATCH;
    else *t = mul(im, *t, x->dim[k]);
  }
  reshape_to(im, x, r, 2, d);
}

static void op_reshape(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *s = ox_input(im, n, 1, true), *r = ox_output(im, n);
  int64_t d[OX_RANK];
  int rank = ox_const_ints(im, s, d, OX_RANK, "the shape");
  if (ox_attr_int(n, "allowzero", 0)) ox_fail(im, "allowzero=1 is not supported");
  int minus = -1;
  int64_t known = 1, total = 1;
  bool batch_in = false;
  for (int k = 0; k < x->rank; k++) {
    if (x->dim[k] == BATCH) batch_in = true;
    else total = mul(im, total, x->dim[k]);
  }
  for (int k = 0; k < rank; k++) {
    if (d[k] == 0) {
      if (k >= x->rank) ox_fail(im, "shape entry %d is 0 but the input has rank %d", k, x->rank);
      d[k] = x->dim[k];
    }
    if (d[k] == -1) {
      if (minus >= 0) ox_fail(im, "the shape has two -1 entries");
      minus = k;
    } else if (d[k] == BATCH) {
      if (!batch_in) ox_fail(im, "the shape holds the batch size but the input has none");
    } else if (d[k] < 0) {
      ox_fail(im, "shape entry %lld", (long long)d[k]);
    } else {
      known = mul(im, known, d[k]);
    }
  }
  bool batch_out = false;
  for (int k = 0; k < rank; k++) batch_out |= d[k] == BATCH;
  if (minus >= 0) {
    if (batch_in && !batch_out) d[minus] = BATCH;   /* carries the batch, if the rest divides evenly */
    else if (!known || total % known) ox_fail(im, "cannot infer the -1 entry of the shape");
    else d[minus] = total / known;
    if (d[minus] == BATCH && (!known || total % known)) ox_fail(im, "cannot infer the -1 entry of the shape");
    if (d[minus] == BATCH && total != known) ox_fail(im, "reshapes that merge the batch with other dimensions are not supported");
  } else if (!batch_in && known != total) {
    ox_fail(im, "cannot reshape %lld elements to %lld", (long long)total, (long long)known);
  }
  reshape_to(im, x, r, rank, d);
}

static void op_transpose(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int64_t p[OX_RANK];
  int c = ox_attr_ints(im, n, "perm", p, OX_RANK);
  if (c < 0) {
    c = x->rank;
    for (int k = 0; k < c; k++) p[k] = c - 1 - k;
  }
  if (c != x->rank) ox_fail(im, "perm has %d entries for rank %d", c, x->rank);
  bool seen[OX_RANK] = {0};
  for (int k = 0; k < c; k++) {
    if (p[k] < 0 || p[k] >= c || seen[p[k]]) ox_fail(im, "perm is not a permutation");
    seen[p[k]] = true;
  }
  ox_copy_shape(r, x);
  for (int k = 0; k < c; k++) r->dim[k] = x->dim[p[k]];
  char l[200];
  ox_list_text(p, c, l, sizeof l);
  ox_define(im, r, false, "transpose(%s, %s)", ox_nchw(im, x), l);
}

static void op_concat(Importer *im, const Onnx__NodeProto *n) {
  if (n->n_input < 1 || n->n_input > 16) ox_fail(im, "Concat of %zu inputs; 1 to 16 supported", n->n_input);
  Value *x0 = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int axis = ox_axis_of(im, ox_attr_int(n, "axis", 0), x0->rank);
  bool all_nhwc = x0->rank == 4, all_int_const = true;
  ox_copy_shape(r, x0);
  r->dim[axis] = 0;
  for (size_t k = 0; k < n->n_input; k++) {
    Value *x = ox_input(im, n, k, true);
    if (x->rank != x0->rank) ox_fail(im, "inputs of different ranks");
    all_nhwc &= x->nhwc;
    all_int_const &= x->is_const && x->is_int;
    if (x->dim[axis] == BATCH || r->dim[axis] == BATCH) r->dim[axis] = BATCH;
    else r->dim[axis] += x->dim[axis];
  }
  if (all_int_const && x0->rank == 1) {   /* a shape being assembled */
    r->is_const = true, r->is_int = true, r->count = r->dim[0];
    if (r->count > 64) ox_fail(im, "a constant of more than 64 integers");
    r->i = arena_alloc(im->a, sizeof(int64_t) * 64);
    int64_t at = 0;
    for (size_t k = 0; k < n->n_input; k++) {
      Value *x = ox_input(im, n, k, true);
      for (int64_t j = 0; j < x->count; j++) r->i[at++] = x->i[j];
    }
    return;
  }
  static const int to_nhwc[4] = {0, 3, 1, 2};
  char args[1200] = "";
  for (size_t k = 0; k < n->n_input; k++) {
    Value *x = ox_input(im, n, k, true);
    size_t e = strlen(args);
    snprintf(args + e, sizeof args - e, "%s%s", k ? ", " : "", all_nhwc ? x->id : ox_nchw(im, x));
  }
  ox_define(im, r, all_nhwc, "concat(%s, axis=%d)", args, all_nhwc ? to_nhwc[axis] : axis);
}

/* Squeeze/Unsqueeze: axes from the second input (opset 13) or attribute. */
static int axes_of(Importer *im, const Onnx__NodeProto *n, int64_t *axes) {
  Value *a = ox_input(im, n, 1, false);
  if (a) return ox_const_ints(im, a, axes, OX_RANK, "axes");
  return ox_attr_ints(im, n, "axes", axes, OX_RANK);
}

static void op_squeeze(Importer *im, const Onnx__NodeProto *n, bool un) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int64_t axes[OX_RANK];
  int na = axes_of(im, n, axes);
  int64_t d[OX_RANK];
  int rank = 0;
  if (un) {
    if (na < 1) ox_fail(im, "Unsqueeze needs axes");
    int out = x->rank + na;
    if (out > OX_RANK) ox_fail(im, "rank above %d", OX_RANK);
    bool ins[OX_RANK] = {0};
    for (int k = 0; k < na; k++) {
      int a = ox_axis_of(im, axes[k], out);
      if (ins[a]) ox_fail(im, "axis listed twice");
      ins[a] = true;
    }
    for (int k = 0, j = 0; k < out; k++) d[rank++] = ins[k] ? 1 : x->dim[j++];
  } else {
    bool drop[OX_RANK] = {0};
    for (int k = 0; k < na; k++) {
      int a = ox_axis_of(im, axes[k], x->rank);
      if (x->dim[a] != 1) ox_fail(im, "axis %d has size %lld, not 1", a, (long long)x->dim[a]);
      drop[a] = true;
    }
    for (int k = 0; k < x->rank; k++)
      if (!(na < 0 ? x->dim[k] == 1 : drop[k])) d[rank++] = x->dim[k];
  }
  reshape_to(im, x, r, rank, d);
}

static void op_reduce(Importer *im, const Onnx__NodeProto *n, const char *fn) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int64_t axes[OX_RANK];
  int na = axes_of(im, n, axes);
  bool keep = ox_attr_int(n, "keepdims", 1) != 0;
  bool on[OX_RANK] = {0};
  if (na <= 0) {
    if (na == 0 && ox_attr_int(n, "noop_with_empty_axes", 0)) {
      ox_copy_shape(r, x);
      ox_define(im, r, x->nhwc, "%s", x->nhwc ? x->id : ox_nchw(im, x));
      return;
    }
    for (int k = 0; k < x->rank; k++) on[k] = true;
  }
  for (int k = 0; k < na; k++) on[ox_axis_of(im, axes[k], x->rank)] = true;
  r->rank = 0;
  char l[100] = "[";
  for (int k = 0; k < x->rank; k++) {
    if (on[k]) snprintf(l + strlen(l), sizeof l - strlen(l), "%s%d", l[1] ? ", " : "", k);
    if (!on[k] || keep) r->dim[r->rank++] = on[k] ? 1 : x->dim[k];
  }
  strcat(l, "]");
  r->is_int = x->is_int;
  ox_define(im, r, false, "%s(%s, axis=%s, keepdims=%s)", fn, ox_nchw(im, x), l, keep ? "true" : "false");
}

static void op_softmax(Importer *im, const Onnx__NodeProto *n, const char *fn) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int axis = ox_axis_of(im, ox_attr_int(n, "axis", -1), x->rank);
  if (im->opset < 13 && axis != x->rank - 1) ox_fail(im, "Softmax before opset 13 flattens; only the last axis is supported");
  ox_copy_shape(r, x);
  ox_define(im, r, false, "%s(%s, axis=%d)", fn, ox_nchw(im, x), axis);
}

static void op_argmax(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int axis = ox_axis_of(im, ox_attr_int(n, "axis", 0), x->rank);
  bool keep = ox_attr_int(n, "keepdims", 1) != 0;
  if (ox_attr_int(n, "select_last_index", 0)) ox_fail(im, "select_last_index=1 is not supported");
  r->rank = 0;
  for (int k = 0; k < x->rank; k++)
    if (k != axis || keep) r->dim[r->rank++] = k == axis ? 1 : x->dim[k];
  r->is_int = true;
  ox_define(im, r, false, "argmax(%s, axis=%d, keepdims=%s)", ox_nchw(im, x), axis, keep ? "true" : "false");
}

static void op_clip(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *lo = ox_input(im, n, 1, false), *hi = ox_input(im, n, 2, false), *r = ox_output(im, n);
  float a = lo ? ox_const_scalar(im, lo, "min") : ox_attr_float(n, "min", -INFINITY);
  float b = hi ? ox_const_scalar(im, hi, "max") : ox_attr_float(n, "max", INFINITY);
  ox_copy_shape(r, x);
  char s[120] = "";
  if (isfinite(a)) snprintf(s, sizeof s, ", min=%.9g", (double)a);
  if (isfinite(b)) snprintf(s + strlen(s), sizeof s - strlen(s), ", max=%.9g", (double)b);
  ox_define(im, r, x->nhwc, "clip(%s%s)", x->nhwc ? x->id : ox_nchw(im, x), s);
}

static void op_cast(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int64_t to = ox_attr_int(n, "to", 0);
  bool to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  if (!to_int && to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    ox_fail(im, "cast to ONNX data type %lld; gradc casts to float and int", (long long)to);
  ox_copy_shape(r, x);
  r->is_int = to_int;
  if (x->is_const && x->is_int && to_int) {
    r->is_const = true, r->count = x->count, r->i = x->i;
    return;
  }
  ox_define(im, r, x->nhwc, "cast(%s, dtype=%s)", x->nhwc ? x->id : ox_nchw(im, x), to_int ? "i32" : "f32");
}

static void op_where(Importer *im, const Onnx__NodeProto *n) {
  Value *c = ox_input(im, n, 0, true), *x = ox_input(im, n, 1, true), *y = ox_input(im, n, 2, true), *r = ox_output(im, n);
  Value t = {0};
  ox_broadcast(im, c, x, &t);
  ox_broadcast(im, &t, y, r);
  r->is_int = x->is_int && y->is_int;
  ox_define(im, r, false, "where(%s, %s, %s)", ox_nchw(im, c), ox_nchw(im, x), ox_nchw(im, y));
}

/* Gather: a row lookup in a 2-D float table (an embedding), or an index
 * into a folded shape. */
static void op_gather(Importer *im, const Onnx__NodeProto *n) {
  Value *data = ox_input(im, n, 0, true), *idx = ox_input(im, n, 1, true), *r = ox_output(im, n);
  int axis = ox_axis_of(im, ox_attr_int(n, "axis", 0), data->rank);
  if (data->is_const && data->is_int && idx->is_const && idx->is_int && data->rank == 1) {
    if (idx->count > 64) ox_fail(im, "a constant of more than 64 integers");
    ox_copy_shape(r, idx);
    r->is_const = true, r->count = idx->count;
    r->i = arena_alloc(im->a, sizeof(int64_t) * (size_t)(idx->count ? idx->count : 1));
    for (int64_t k = 0; k < idx->count; k++) {
      int64_t j = idx->i[k] < 0 ? idx->i[k] + data->count : idx->i[k];
      if (j < 0 || j >= data->count) ox_fail(im, "index %lld is out of range", (long long)idx->i[k]);
      r->i[k] = data->i[j];
    }
    return;
  }
  if (!data->is_const || data->is_int || data->rank != 2 || axis != 0 || !idx->is_int)
    ox_fail(im, "only embeddings are supported: rows (axis 0) of a 2-D float initializer by integer ids");
  if (idx->rank + 1 > OX_RANK) ox_fail(im, "rank above %d", OX_RANK);
  ox_copy_shape(r, idx);
  r->dim[r->rank++] = data->dim[1];
  r->is_int = false;
  ox_define(im, r, false, "gather(%s, %s)", ox_nchw(im, data), ox_nchw(im, idx));
}

static void op_shape(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  if (ox_attr(n, "start") || ox_attr(n, "end")) ox_fail(im, "start and end are not supported");
  r->rank = 1, r->dim[0] = x->rank, r->is_int = true, r->is_const = true, r->count = x->rank;
  r->i = arena_alloc(im->a, sizeof(int64_t) * OX_RANK);
  for (int k = 0; k < x->rank; k++) r->i[k] = x->dim[k];
}

static void op_constant(Importer *im, const Onnx__NodeProto *n) {
  Value *r = ox_output(im, n);
  const Onnx__AttributeProto *a = ox_attr(n, "value");
  if (a && a->t) {
    ox_set_tensor(im, r, a->t);
  } else if ((a = ox_attr(n, "value_float")) && a->has_f) {
    r->is_const = true, r->count = 1, r->f = arena_alloc(im->a, sizeof(float)), r->f[0] = a->f;
  } else if ((a = ox_attr(n, "value_int")) && a->has_i) {
    r->is_const = true, r->is_int = true, r->count = 1, r->i = arena_alloc(im->a, sizeof(int64_t)), r->i[0] = a->i;
  } else if ((a = ox_attr(n, "value_ints"))) {
    if (a->n_ints > 64) ox_fail(im, "a constant of more than 64 integers");
    r->is_const = true, r->is_int = true, r->rank = 1, r->dim[0] = r->count = (int64_t)a->n_ints;
    r->i = arena_alloc(im->a, sizeof(int64_t) * (a->n_ints + 1));
    for (size_t k = 0; k < a->n_ints; k++) r->i[k] = a->ints[k];
  } else {
    ox_fail(im, "only value, value_float, value_int and value_ints constants are supported");
  }
}

static void op_dropout(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *ratio = ox_input(im, n, 1, false), *r = ox_output(im, n);
  float rate = ratio ? ox_const_scalar(im, ratio, "ratio") : ox_attr_float(n, "ratio", 0.5f);
  if (n->n_output > 1 && n->output[1] && *n->output[1]) ox_fail(im, "the mask output is not supported");
  ox_copy_shape(r, x);
  if (!(rate >= 0 && rate < 1)) ox_fail(im, "ratio %g is outside [0, 1)", (double)rate);
  const char *id = x->nhwc ? x->id : ox_nchw(im, x);
  if (rate == 0) ox_define(im, r, x->nhwc, "%s", id);
  else ox_define(im, r, x->nhwc, "dropout(%s, %.9g)", id, (double)rate);
}

/* Slice: constant starts, ends, axes, steps, as ONNX clamps them, written
 * as gradc's x[b:e:s, ...] with non-negative bounds (an end before element
 * 0 of a negative step left out). */
static void op_slice(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  int64_t st[OX_RANK], en[OX_RANK], ax[OX_RANK], sp[OX_RANK];
  int k = ox_const_ints(im, ox_input(im, n, 1, true), st, OX_RANK, "starts");
  if (ox_const_ints(im, ox_input(im, n, 2, true), en, OX_RANK, "ends") != k) ox_fail(im, "starts and ends differ in length");
  Value *av = ox_input(im, n, 3, false), *sv = ox_input(im, n, 4, false);
  if (av && ox_const_ints(im, av, ax, OX_RANK, "axes") != k) ox_fail(im, "axes and starts differ in length");
  if (sv && ox_const_ints(im, sv, sp, OX_RANK, "steps") != k) ox_fail(im, "steps and starts differ in length");
  int64_t b[OX_RANK], e[OX_RANK], step[OX_RANK];
  for (int i = 0; i < x->rank; i++) b[i] = 0, e[i] = x->dim[i], step[i] = 1;
  bool seen[OX_RANK] = {0};
  for (int j = 0; j < k; j++) {
    int a = ox_axis_of(im, av ? ax[j] : j, x->rank);
    if (seen[a]) ox_fail(im, "axis %d is sliced twice", a);
    seen[a] = true;
    int64_t d = x->dim[a], s1 = sv ? sp[j] : 1, lo = st[j], hi = en[j];
    if (s1 == 0) ox_fail(im, "a step of 0");
    if (d == BATCH) {
      if (lo != 0 || hi < (INT64_C(1) << 31) || s1 != 1) ox_fail(im, "the batch dimension can only be taken whole");
      continue;
    }
    if (lo < 0) lo += d;
    if (hi < 0 && hi > INT64_MIN / 2) hi += d;
    if (s1 > 0) lo = lo < 0 ? 0 : lo > d ? d : lo, hi = hi < 0 ? 0 : hi > d ? d : hi;
    else lo = lo < 0 ? 0 : lo > d - 1 ? d - 1 : lo, hi = hi < -1 ? -1 : hi > d - 1 ? d - 1 : hi;
    b[a] = lo, e[a] = hi, step[a] = s1;
  }
  ox_copy_shape(r, x);
  char idx[800] = "";
  for (int i = 0; i < x->rank; i++) {
    char part[80];
    if (x->dim[i] == BATCH) {
      snprintf(part, sizeof part, ":");
    } else {
      int64_t len = step[i] > 0 ? (e[i] - b[i] + step[i] - 1) / step[i] : (b[i] - e[i] - step[i] - 1) / -step[i];
      if (len <= 0) ox_fail(im, "the slice of axis %d is empty", i);
      r->dim[i] = len;
      if (e[i] < 0) snprintf(part, sizeof part, "%lld::%lld", (long long)b[i], (long long)step[i]);
      else snprintf(part, sizeof part, "%lld:%lld:%lld", (long long)b[i], (long long)e[i], (long long)step[i]);
    }
    snprintf(idx + strlen(idx), sizeof idx - strlen(idx), "%s%s", i ? ", " : "", part);
  }
  if (!x->rank) ox_fail(im, "a slice of a scalar");
  ox_define(im, r, false, "%s[%s]", ox_nchw(im, x), idx);
}

/* Expand: numpy's broadcast of x and a constant shape (gradc export
 * writes broadcast_to so, 1 where the batch is), broadcast_to. */
static void op_expand(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n), to = {0};
  to.rank = ox_const_ints(im, ox_input(im, n, 1, true), to.dim, OX_RANK, "the shape");
  for (int k = 0; k < to.rank; k++)
    if (to.dim[k] < 0 && to.dim[k] != BATCH) ox_fail(im, "shape entry %lld", (long long)to.dim[k]);
  ox_broadcast(im, x, &to, r);
  r->is_int = x->is_int;
  bool same = r->rank == x->rank && !memcmp(r->dim, x->dim, sizeof(int64_t) * (size_t)r->rank);
  if (same) {
    ox_define(im, r, x->nhwc, "%s", x->nhwc ? x->id : ox_nchw(im, x));
    return;
  }
  char l[300];
  ox_list_text(r->dim, r->rank, l, sizeof l);
  ox_define(im, r, false, "broadcast_to(%s, %s)", ox_nchw(im, x), l);
}

/* Pad with zeros (mode constant, value 0): gradc's pad. */
static void op_pad(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *pv = ox_input(im, n, 1, true), *cv = ox_input(im, n, 2, false), *r = ox_output(im, n);
  if (ox_input(im, n, 3, false)) ox_fail(im, "the axes input is not supported");
  if (!ox_attr_is(n, "mode", "constant") && !ox_attr_is(n, "mode", NULL)) ox_fail(im, "only mode=constant is supported");
  if (cv && ox_const_scalar(im, cv, "constant_value") != 0) ox_fail(im, "only padding with zeros is supported");
  int64_t p[2 * OX_RANK];
  if (ox_const_ints(im, pv, p, 2 * OX_RANK, "pads") != 2 * x->rank) ox_fail(im, "pads must have 2 values per axis");
  ox_copy_shape(r, x);
  char l[600] = "[";
  bool any = false;
  for (int k = 0; k < x->rank; k++) {
    int64_t b = p[k], e = p[k + x->rank];
    if (b < 0 || e < 0 || b > 4096 || e > 4096) ox_fail(im, "pads must be 0 to 4096");
    if ((b || e) && x->dim[k] == BATCH) ox_fail(im, "the batch dimension cannot be padded");
    if (b || e) r->dim[k] += b + e, any = true;
    snprintf(l + strlen(l), sizeof l - strlen(l), "%s[%lld, %lld]", k ? ", " : "", (long long)b, (long long)e);
  }
  strcat(l, "]");
  const char *id = x->nhwc ? x->id : ox_nchw(im, x);
  if (!any) {
    ox_define(im, r, x->nhwc, "%s", id);
    return;
  }
  ox_define(im, r, false, "pad(%s, %s)", ox_nchw(im, x), l);
}

typedef struct OpRow {
  const char *name;
  void (*fn)(Importer *, const Onnx__NodeProto *, const char *);
  const char *arg;
} OpRow;

#define WRAP(f, call) static void f(Importer *im, const Onnx__NodeProto *n, const char *s) { (void)s; call; }
WRAP(w_matmul, ox_gemm(im, n, false))
WRAP(w_gemm, ox_gemm(im, n, true))
WRAP(w_conv, ox_conv(im, n))
WRAP(w_convt, ox_conv_transpose(im, n))
WRAP(w_maxpool, ox_pool(im, n, true))
WRAP(w_avgpool, ox_pool(im, n, false))
WRAP(w_gap, ox_global_avgpool(im, n))
WRAP(w_bn, ox_batch_norm(im, n))
WRAP(w_flatten, op_flatten(im, n))
WRAP(w_reshape, op_reshape(im, n))
WRAP(w_transpose, op_transpose(im, n))
WRAP(w_concat, op_concat(im, n))
WRAP(w_squeeze, op_squeeze(im, n, false))
WRAP(w_unsqueeze, op_squeeze(im, n, true))
WRAP(w_argmax, op_argmax(im, n))
WRAP(w_clip, op_clip(im, n))
WRAP(w_cast, op_cast(im, n))
WRAP(w_where, op_where(im, n))
WRAP(w_gather, op_gather(im, n))
WRAP(w_shape, op_shape(im, n))
WRAP(w_constant, op_constant(im, n))
WRAP(w_resize, ox_resize(im, n))
WRAP(w_dropout, op_dropout(im, n))
WRAP(w_slice, op_slice(im, n))
WRAP(w_pad, op_pad(im, n))
WRAP(w_expand, op_expand(im, n))
static void w_unary(Importer *im, const Onnx__NodeProto *n, const char *s) { op_unary(im, n, s); }
static void w_sym(Importer *im, const Onnx__NodeProto *n, const char *s) { op_binary(im, n, s, NULL); }
static void w_fn2(Importer *im, const Onnx__NodeProto *n, const char *s) { op_binary(im, n, NULL, s); }
/* Comparisons give bool, which Where takes. */
static void w_compare(Importer *im, const Onnx__NodeProto *n, const char *s) {
  op_binary(im, n, s, NULL);
  im->vals[im->nvals - 1]->is_int = false;
}
static void w_reduce(Importer *im, const Onnx__NodeProto *n, const char *s) { op_reduce(im, n, s); }
static void w_softmax(Importer *im, const Onnx__NodeProto *n, const char *s) { op_softmax(im, n, s); }
static void w_leaky(Importer *im, const Onnx__NodeProto *n, const char *s) {
  (void)s;
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  ox_copy_shape(r, x);
  ox_define(im, r, x->nhwc, "leaky_relu(%s, alpha=%.7g)", x->nhwc ? x->id : ox_nchw(im, x),
         (double)ox_attr_float(n, "alpha", 0.01f));
}
static void w_identity(Importer *im, const Onnx__NodeProto *n, const char *s) {
  (void)s;
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  if (x->is_const) {
    *r = *x, r->name = arena_strdup(im->a, n->output[0]), r->id = NULL, r->other = NULL;
    return;
  }
  ox_copy_shape(r, x);
  ox_define(im, r, x->nhwc, "%s", x->nhwc ? x->id : ox_nchw(im, x));
}

/* The operators gradc has, in ONNX's names. */
static const OpRow ops[] = {
    {"MatMul", w_matmul, NULL}, {"Gemm", w_gemm, NULL},
    {"Add", w_sym, "+"}, {"Sub", w_sym, "-"}, {"Mul", w_sym, "*"}, {"Div", w_sym, "/"}, {"Pow", w_fn2, "pow"},
    {"Neg", w_unary, "neg"}, {"Abs", w_unary, "abs"}, {"Sqrt", w_unary, "sqrt"}, {"Exp", w_unary, "exp"},
    {"Log", w_unary, "log"}, {"Relu", w_unary, "relu"}, {"Sigmoid", w_unary, "sigmoid"}, {"Tanh", w_unary, "tanh"},
    {"LeakyRelu", w_leaky, NULL}, {"Softmax", w_softmax, "softmax"}, {"LogSoftmax", w_softmax, "log_softmax"},
    {"ReduceSum", w_reduce, "sum"}, {"ReduceMean", w_reduce, "mean"}, {"ReduceMax", w_reduce, "max"},
    {"ReduceMin", w_reduce, "min"}, {"ArgMax", w_argmax, NULL}, {"Conv", w_conv, NULL},
    {"ConvTranspose", w_convt, NULL}, {"MaxPool", w_maxpool, NULL}, {"AveragePool", w_avgpool, NULL},
    {"GlobalAveragePool", w_gap, NULL}, {"BatchNormalization", w_bn, NULL}, {"Dropout", w_dropout, NULL},
    {"Flatten", w_flatten, NULL}, {"Reshape", w_reshape, NULL}, {"Transpose", w_transpose, NULL},
    {"Concat", w_concat, NULL}, {"Squeeze", w_squeeze, NULL}, {"Unsqueeze", w_unsqueeze, NULL},
    {"Gather", w_gather, NULL}, {"Shape", w_shape, NULL}, {"Constant", w_constant, NULL}, {"Clip", w_clip, NULL},
    {"Where", w_where, NULL}, {"Cast", w_cast, NULL}, {"Identity", w_identity, NULL}, {"Resize", w_resize, NULL},
    {"Slice", w_slice, NULL}, {"Pad", w_pad, NULL}, {"Expand", w_expand, NULL}, {"Max", w_fn2, "maximum"}, {"Min", w_fn2, "minimum"},
    {"Softplus", w_unary, "softplus"}, {"Erf", w_unary, "erf"}, {"Equal", w_compare, "=="}, {"Less", w_compare, "<"},
    {"LessOrEqual", w_compare, "<="}, {"Greater", w_compare, ">"}, {"GreaterOrEqual", w_compare, ">="},
};


/* The node's operator by its row of ops[], or the error naming it and
 * what gradc imports. */
void ox_translate_node(Importer *im, const Onnx__NodeProto *n) {
  const OpRow *row = NULL;
  for (size_t j = 0; j < sizeof ops / sizeof *ops && n->op_type; j++)
    if (!strcmp(ops[j].name, n->op_type)) row = &ops[j];
  if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) row = NULL;
  if (!row)
    ox_fail(im, "operator '%.60s%s%.60s' is not supported by gradc (gradc imports: MatMul, Gemm, Add, Sub, "
         "Mul, Div, Pow, Neg, Abs, Sqrt, Exp, Log, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, "
         "ReduceSum/Mean/Max/Min, ArgMax, Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, "
         "BatchNormalization, Dropout, Flatten, Reshape, Transpose, Concat, Squeeze, Unsqueeze, Gather, "
         "Shape, Constant, Clip, Where, Cast, Identity, Resize, Slice, Pad, Expand, Max, Min, Softplus, Erf, Equal, Less, LessOrEqual, Greater, "
         "GreaterOrEqual)",
         n->domain && *n->domain ? n->domain : "", n->domain && *n->domain ? "." : "",
         n->op_type ? n->op_type : "(none)");
  for (size_t j = 1; j < n->n_output; j++)
    if (n->output[j] && *n->output[j] && strcmp(n->op_type, "Dropout") && strcmp(n->op_type, "MaxPool") &&
        strcmp(n->op_type, "BatchNormalization"))
      ox_fail(im, "nodes with several outputs are not supported");
  row->fn(im, n, row->arg);
}
