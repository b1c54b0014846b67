/*
 * augment.c - data augmentation inside the compiled train step (issue 22):
 * random_flip, random_translation and random_crop on NHWC images
 * [batch, height, width, channels], as builtins of the parser.
 *
 * Like tensor.c, none of them is an op of its own.  Each image draws its
 * own transform from one random_uniform of shape [batch, 1, 1, n] (the
 * counter-based generator of ops.h: a pure function of (seed, step
 * counter, element), so runs repeat exactly, on any thread count, in the
 * JIT, the .so and the evaluator alike).  The transforms are integer
 * shifts and mirror images, so every candidate output is a static
 * rearrangement of x - slices, a reversed slice, a broadcast border row,
 * concatenated - and the image picks its candidate with `where` on its
 * draw.  Consequences, each on purpose:
 *   - no new op, code generator or gradient rule: the gradient is the
 *     existing rules' (slice, concat, broadcast, where), which is the
 *     inverse scatter of the permutation with nothing for the fill, so an
 *     augmentation on an activation differentiates correctly;
 *   - a batch of any (symbolic) size, since nothing addresses the batch
 *     axis; height and width must be static;
 *   - exact values: a pixel is copied or is the fill, never interpolated;
 *   - the cost is one candidate per possible shift (2K+1 per axis, K the
 *     largest shift in pixels), a few full-image copies: nothing next to
 *     the convolutions that follow.
 * Each result is train_select(augmented, x), as dropout: forward, eval and
 * predict see x itself and compute none of it.
 *
 * Keras' RandomTranslation interpolates bilinearly by default; ours is
 * its interpolation="nearest": the shift of an image is round(u * size)
 * pixels, u uniform in [lower, upper).  Rotation is left out: its
 * candidates are not a finite set of copies, and an exact bilinear
 * rotation needs per-pixel weights (a gather by computed positions) that
 * this construction does not give.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

typedef enum { FILL_CONSTANT, FILL_REFLECT, FILL_NEAREST } FillMode;

typedef struct Fill {
  FillMode mode;
  double value;            /* FILL_CONSTANT's */
} Fill;

static Loc at(Call *c) { return c->fn->loc; }

/* x as NHWC images with a static height and width, else a diagnostic. */
static Node *images(Parser *p, Call *c) {
  Node *x = call_tensor(p, c, 0, "x");
  const Shape *s = &x->shape;
  if (s->rank != 4 || s->d[1].sym || s->d[2].sym || s->d[3].sym) {
    char b[SHAPE_STR_MAX];
    parse_fail(p, at(c), "%s needs NHWC images [batch, height, width, channels] with a static height, width "
               "and channel count, got %s%s", call_name(p, c), dtype_names[x->dtype],
               shape_str(p->g, s, b, sizeof b));
  }
  /* Why refused: as for random_normal, a draw that reads nothing of a
   * loop's body would be made once for every step of the loop. */
  if (p->g->cur_loop) parse_fail(p, at(c), "%s inside a scan body is not supported", call_name(p, c));
  return x;
}

/* seed=k, else the model's next unseeded random op's number (fn_random). */
static int64_t seed_arg(Parser *p, Call *c) {
  int64_t seed = p->nrandom++;
  Val *s = call_kwarg(c, "seed");
  if (s) {
    double v = call_num(p, c, s, true);
    if (v < 0 || v > 1e15) parse_fail(p, s->loc, "%s: seed must be a non-negative integer", call_name(p, c));
    seed = (int64_t)v;
  }
  return seed;
}

/* n uniform draws in [0, 1) per image: [batch, 1, 1, n]. */
static Node *draws(Parser *p, Node *x, int n, int64_t seed, Loc loc) {
  Attrs a = {.to = {4, {x->shape.d[0], {1, 0}, {1, 0}, {n, 0}}}, .lo = 0, .hi = 1, .dtype = DT_F32, .seed = seed};
  return parse_mk(p, OP_RANDOM_UNIFORM, NULL, 0, &a, loc);
}

/* x[..., begin:end:step, ...] along axis ax (end -1 with a negative step:
 * down to index 0, as reverse). */
static Node *slice_axis(Parser *p, Node *x, int ax, int64_t begin, int64_t end, int64_t step, Loc loc) {
  Attrs a = {0};
  for (int i = 0; i < x->shape.rank; i++)
    a.begin[i] = 0, a.end[i] = x->shape.d[i].sym ? INT64_MAX : x->shape.d[i].n, a.step[i] = 1;
  a.begin[ax] = begin, a.end[ax] = end, a.step[ax] = step;
  return parse_mk1(p, OP_SLICE, x, &a, loc);
}

/* Draw j of u, [batch, 1, 1, 1]. */
static Node *draw(Parser *p, Node *u, int j, Loc loc) {
  return u->shape.d[3].n == 1 ? u : slice_axis(p, u, 3, j, j + 1, 1, loc);
}

/* v (a scalar or x's shape with 1 along ax) repeated to m along ax. */
static Node *widen(Parser *p, Node *v, const Node *x, int ax, int64_t m, Loc loc) {
  Attrs a = {.to = x->shape};
  a.to.d[ax] = (Dim){m, 0};
  return parse_mk1(p, OP_BROADCAST, v, &a, loc);
}

/* x shifted by k pixels along axis ax: out[i] = x[i - k], the m = |k|
 * uncovered rows filled as f says (Keras' fill modes: constant, reflect
 * d c b a | a b c d, nearest a a a a | a b c d; |k| <= size, so one
 * reflection suffices). */
static Node *shifted(Parser *p, Node *x, int ax, int64_t k, Fill f, Loc loc) {
  int64_t n = x->shape.d[ax].n, m = k < 0 ? -k : k;
  GRADC_ASSERT(m <= n);
  if (k == 0) return x;
  Node *border;
  switch (f.mode) {
  case FILL_CONSTANT: border = widen(p, graph_scalar(p->g, f.value, x->dtype, loc), x, ax, m, loc); break;
  case FILL_NEAREST: {
    int64_t edge = k > 0 ? 0 : n - 1;
    border = widen(p, slice_axis(p, x, ax, edge, edge + 1, 1, loc), x, ax, m, loc);
    break;
  }
  default: /* reflect: rows m-1 .. 0 before, n-1 .. n-m after */
    border = k > 0 ? slice_axis(p, x, ax, m - 1, -1, -1, loc) : slice_axis(p, x, ax, n - 1, n - m - 1, -1, loc);
    break;
  }
  if (m == n) return border;
  Node *body = k > 0 ? slice_axis(p, x, ax, 0, n - m, 1, loc) : slice_axis(p, x, ax, m, n, 1, loc);
  Node *s[2] = {k > 0 ? border : body, k > 0 ? body : border};
  Attrs a = {.axis = ax};
  return parse_mk(p, OP_CONCAT, s, 2, &a, loc);
}

/* Each image of x shifted along ax by its shift in s ([batch, 1, 1, 1],
 * integers in [-K, K] as floats): where(s == k, x shifted by k, ...) over
 * every k; a shift outside that range (none is drawn) leaves the image. */
static Node *shift_each(Parser *p, Node *x, int ax, Node *s, int64_t K, Fill f, Loc loc) {
  Node *out = x;
  for (int64_t k = -K; k <= K; k++) {
    if (k == 0) continue;
    Node *pick = parse_mk2(p, OP_EQ, s, parse_scalar(p, (double)k, false, loc), loc);
    out = parse_mk(p, OP_WHERE, (Node *[]){pick, shifted(p, x, ax, k, f, loc), out}, 3, NULL, loc);
  }
  return out;
}

/* train_select(augmented, x): the augmentation in train steps only. */
static Node *train_only(Parser *p, Node *augmented, Node *x, Loc loc) {
  return parse_mk2(p, OP_TRAIN_SELECT, augmented, x, loc);
}

/* fill_mode=constant|reflect|nearest and fill_value=0 */
static Fill fill_args(Parser *p, Call *c, int mode_pos, FillMode dflt) {
  Fill f = {dflt, 0};
  Val *m = call_arg(c, mode_pos, "fill_mode");
  if (m) {
    if (m->kind == V_NAME && !strcmp(m->name, "constant")) f.mode = FILL_CONSTANT;
    else if (m->kind == V_NAME && !strcmp(m->name, "reflect")) f.mode = FILL_REFLECT;
    else if (m->kind == V_NAME && !strcmp(m->name, "nearest")) f.mode = FILL_NEAREST;
    else parse_fail(p, m->loc, "%s: fill_mode must be constant, reflect or nearest", call_name(p, c));
  }
  Val *v = call_arg(c, mode_pos + 1, "fill_value");
  if (v) {
    f.value = call_num(p, c, v, false);
    if (f.mode != FILL_CONSTANT)
      parse_fail(p, v->loc, "%s: fill_value is only used with fill_mode=constant", call_name(p, c));
  }
  return f;
}

/* random_flip(x, mode=horizontal_and_vertical, seed=k): Keras RandomFlip.
 * Each image is mirrored left-right (horizontal: the width axis) and/or
 * upside down (vertical: the height axis), each with probability 1/2 on
 * its own draw (u < 0.5). */
Node *augment_flip(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = images(p, c);
  Val *mv = call_arg(c, 1, "mode");
  bool h = true, v = true;
  if (mv) {
    const char *s = mv->kind == V_NAME ? mv->name : "";
    h = !strcmp(s, "horizontal") || !strcmp(s, "horizontal_and_vertical");
    v = !strcmp(s, "vertical") || !strcmp(s, "horizontal_and_vertical");
    if (!h && !v)
      parse_fail(p, mv->loc, "random_flip: mode must be horizontal, vertical or horizontal_and_vertical");
  }
  Loc loc = at(c);
  Node *u = draws(p, x, h + v, seed_arg(p, c), loc), *out = x;
  int j = 0, axes[2] = {h ? 2 : 0, v ? 1 : 0};
  for (int i = 0; i < 2; i++) {
    if (!axes[i]) continue;
    int64_t n = out->shape.d[axes[i]].n;
    Node *coin = parse_mk2(p, OP_LT, draw(p, u, j++, loc), parse_scalar(p, 0.5, false, loc), loc);
    Node *mirror = slice_axis(p, out, axes[i], n - 1, -1, -1, loc);
    out = parse_mk(p, OP_WHERE, (Node *[]){coin, mirror, out}, 3, NULL, loc);
  }
  return train_only(p, out, x, loc);
}

/* A Keras translation factor: f (for [-f, f]) or [lower, upper], within
 * [-1, 1]. */
static void factor_arg(Parser *p, Call *c, Val *v, double r[2]) {
  if (v->kind == V_LIST && v->lshape.rank == 1 && v->lshape.d[0].n == 2 && !v->items[0].name &&
      !v->items[1].name) {
    r[0] = v->items[0].v, r[1] = v->items[1].v;
  } else {
    r[1] = call_num(p, c, v, false);
    r[0] = -r[1];
  }
  if (!(r[0] >= -1 && r[0] <= r[1] && r[1] <= 1))
    parse_fail(p, v->loc, "%s: a factor is f in [0, 1] or [lower, upper] with -1 <= lower <= upper <= 1, got [%g, %g]",
               call_name(p, c), r[0], r[1]);
}

/* x with each image shifted along axis ax of size n for the factor range
 * r: by round(u * n) pixels (half to even, as the round op), u uniform in
 * [r0, r1) from draw d in [0, 1).  A range of one value is that one
 * shift for every image. */
static Node *translate_axis(Parser *p, Node *x, int ax, Node *d, const double r[2], Fill f, Loc loc) {
  double n = (double)x->shape.d[ax].n;
  if (r[0] == r[1]) return shifted(p, x, ax, (int64_t)nearbyint(r[0] * n), f, loc);
  /* ceil bounds every rounding of a value in [r0 n, r1 n], f32 error too */
  int64_t K = (int64_t)fmin(ceil(fmax(fabs(r[0]), fabs(r[1])) * n), n);
  Node *u = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, d, parse_scalar(p, (r[1] - r[0]) * n, false, loc), loc),
                      parse_scalar(p, r[0] * n, false, loc), loc);
  return shift_each(p, x, ax, parse_mk1(p, OP_ROUND, u, NULL, loc), K, f, loc);
}

/* random_translation(x, height_factor, width_factor, fill_mode=reflect,
 * fill_value=0, seed=k): Keras RandomTranslation with
 * interpolation="nearest".  Image i moves down by round(u * height) and
 * right by round(v * width) pixels, u and v uniform in the factors' ranges
 * (a negative shift moves up or left); uncovered pixels per fill_mode. */
Node *augment_translation(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = images(p, c);
  Val *hv = call_arg(c, 1, "height_factor"), *wv = call_arg(c, 2, "width_factor");
  if (!hv || !wv) parse_fail(p, at(c), "random_translation: expected random_translation(x, height_factor, width_factor)");
  double hr[2], wr[2];
  factor_arg(p, c, hv, hr);
  factor_arg(p, c, wv, wr);
  Fill f = fill_args(p, c, 3, FILL_REFLECT);
  Loc loc = at(c);
  Node *u = draws(p, x, 2, seed_arg(p, c), loc);
  /* Rows first, then columns: a pixel uncovered by either shift is fill,
   * the same as one shift of both (reflect and nearest map each axis on its
   * own, as Keras' transform does). */
  Node *out = translate_axis(p, x, 1, draw(p, u, 0, loc), hr, f, loc);
  out = translate_axis(p, out, 2, draw(p, u, 1, loc), wr, f, loc);
  return train_only(p, out, x, loc);
}

/* random_crop(x, pad, seed=k): "random crop with padding", the CIFAR
 * recipe (torchvision RandomCrop(size, padding=pad)): x padded by pad
 * zeros on every side and a window of x's size cut at a uniform offset in
 * [0, 2 pad] on each axis, i.e. x shifted by an integer uniform in
 * [-pad, pad] per axis with zero fill.  Not Keras' RandomCrop, which
 * crops to a smaller size without padding. */
Node *augment_crop(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = images(p, c);
  Val *pv = call_arg(c, 1, "pad");
  if (!pv) parse_fail(p, at(c), "random_crop: missing pad");
  double pad = call_num(p, c, pv, true);
  int64_t lim = x->shape.d[1].n < x->shape.d[2].n ? x->shape.d[1].n : x->shape.d[2].n;
  if (pad < 1 || pad > (double)lim)
    parse_fail(p, pv->loc, "random_crop: pad must lie in [1, %lld] (the image's smaller side), got %g",
               (long long)lim, pad);
  int64_t P = (int64_t)pad;
  Loc loc = at(c);
  Node *u = draws(p, x, 2, seed_arg(p, c), loc), *out = x;
  Fill zero = {FILL_CONSTANT, 0};
  for (int j = 0; j < 2; j++) {
    /* min(floor(u (2P + 1)), 2P) - P: u (2P + 1) may round up to 2P + 1 */
    Node *k = parse_mk1(p, OP_FLOOR, parse_mk2(p, OP_MUL, draw(p, u, j, loc), parse_scalar(p, (double)(2 * P + 1), false, loc), loc),
                        NULL, loc);
    k = parse_mk2(p, OP_SUB, parse_mk2(p, OP_MINIMUM, k, parse_scalar(p, (double)(2 * P), false, loc), loc),
                  parse_scalar(p, (double)P, false, loc), loc);
    out = shift_each(p, out, 1 + j, k, P, zero, loc);
  }
  return train_only(p, out, x, loc);
}
