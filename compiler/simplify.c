/*
 * simplify.c - algebraic rewrites that are exact: x*1, 1*x, x/1, x+0, 0+x,
 * x-0, -(-x), a cast or broadcast to what x already is, a reshape to x's own
 * shape, reshape of a reshape (one reshape), transpose of a transpose (one
 * transpose, or none), and relu's backward mask read from relu's output;
 * and, within float tolerance, the sum or mean of a broadcast over its
 * broadcast axes (x itself, times the number of copies for a sum).  Each
 * keeps x's shape and dtype, so no consumer sees a difference; a rewrite
 * that would change the result's shape through broadcasting (x[3] *
 * ones[2,3]) is not made.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

static bool all_equal(const Node *n, double v) {
  if (n->op != OP_CONST) return false;
  int64_t c = shape_static_count(&n->shape);
  for (int64_t i = 0; i < c; i++)
    if (n->a.values[i] != v) return false;
  return c > 0;
}

/* The operand that n reduces to, or NULL. */
static Node *identity_of(Graph *g, Node *n) {
  Node *a = n->nsrc > 0 ? n->src[0] : NULL, *b = n->nsrc > 1 ? n->src[1] : NULL;
  #define SAME(x) (shape_eq(&(x)->shape, &n->shape) && (x)->dtype == n->dtype)
  const OpInfo *info = &op_info[n->op];
  Node *r = NULL;
  if (!isnan(info->identity)) {
    if (all_equal(b, info->identity) && SAME(a)) r = a;
    else if ((info->flags & F_COMMUTATIVE) && all_equal(a, info->identity) && SAME(b)) r = b;
  } else if (info->flags & F_INVOLUTION) {
    if (a->op == n->op) r = a->src[0];
  } else if (info->flags & F_CONVERT) {
    if (SAME(a)) r = a;
  }
  #undef SAME
  (void)g;
  return r;
}

static Node *mk(Graph *g, OpKind op, Node **src, int nsrc, const Attrs *a, const Node *like) {
  Node *n = graph_node(g, op, src, nsrc, a, like->loc);
  GRADC_ASSERT(n);        /* the rewrites keep shapes valid */
  n->fwd = like->fwd;
  n->rule = like->rule;
  return n;
}

/* sum or mean over axes along which x was only broadcast: every term of
 * the reduction is the same element of x, so the mean is x itself and the
 * sum is x times the number of copies - no loop over the broadcast.  The
 * result is x reshaped (and broadcast over the axes kept) to n's shape. */
static Node *reduce_of_broadcast(Graph *g, Node *n) {
  if ((n->op != OP_SUM && n->op != OP_MEAN) || n->src[0]->op != OP_BROADCAST) return NULL;
  Node *b = n->src[0], *x = b->src[0];
  if (!dtype_is_float(x->dtype) || x->dtype != n->dtype) return NULL;
  const Shape *s = &b->shape;
  int off = s->rank - x->shape.rank;
  Shape xr = {0}, copies = {0};
  for (int i = 0; i < s->rank; i++) {
    Dim xd = i >= off ? x->shape.d[i - off] : (Dim){1, 0};
    if (n->a.axes >> i & 1) {
      if (!dim_is_one(xd)) return NULL;          /* reduces real values of x */
      copies.d[copies.rank++] = s->d[i];
      if (n->a.keepdims) xr.d[xr.rank++] = (Dim){1, 0};
    } else {
      xr.d[xr.rank++] = xd;
    }
  }
  Attrs ra = {.to = xr};
  Node *r = shape_eq(&xr, &x->shape) ? x : mk(g, OP_RESHAPE, &x, 1, &ra, n);
  if (!shape_eq(&xr, &n->shape)) {
    Attrs ba = {.to = n->shape};
    r = mk(g, OP_BROADCAST, &r, 1, &ba, n);
  }
  if (n->op == OP_SUM) {
    Shape scalar = {0};
    bool sym = false;
    for (int i = 0; i < copies.rank; i++) sym |= copies.d[i].sym != 0;
    Node *k = graph_leaf(g, sym ? OP_SIZE : OP_CONST, NULL, n->dtype, &scalar, n->loc);
    k->fwd = n->fwd;
    k->rule = n->rule;
    if (sym) {
      k->a.to = copies;
    } else {
      k->a.values = arena_alloc(g->arena, sizeof(double));
      k->a.values[0] = (double)shape_static_count(&copies);
    }
    Node *src[2] = {r, k};
    r = mk(g, OP_MUL, src, 2, NULL, n);
  }
  return r;
}

/* relu's gradient mask x > 0 equals relu(x) > 0: reading the forward
 * output lets the pre-activation x die right after the forward pass. */
static bool relu_mask(Graph *g, Node *x) {
  if (x->op != OP_GT || !all_equal(x->src[1], 0) || x->src[1]->shape.rank != 0) return false;
  Node *pre = x->src[0];
  for (int i = pre->id + 1; i < g->nnodes; i++) {
    Node *r = g->nodes[i];
    if (r->op == OP_RELU && r->src[0] == pre) {
      x->src[0] = r;
      return true;
    }
  }
  return false;
}

int simplify(Graph *g) {
  int changed = 0, n = g->nnodes;
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    if (x->moved) continue;     /* dead: replaced by an earlier pass */
    graph_resolve(x);
    if (relu_mask(g, x)) {
      changed++;
      continue;
    }
    if (x->flags & (N_OUTPUT | N_METRIC | N_LOSS | N_GRAD)) continue;
    Node *r = identity_of(g, x);
    if (!r) r = reduce_of_broadcast(g, x);
    if (r) {
      graph_replace(g, x, r);
      changed++;
      continue;
    }
    /* reshape(reshape(y)) reads y directly; transposes compose. */
    if (x->op == OP_RESHAPE && x->src[0]->op == OP_RESHAPE) {
      x->src[0] = x->src[0]->src[0];
      changed++;
    } else if (x->op == OP_TRANSPOSE && x->src[0]->op == OP_TRANSPOSE) {
      Node *inner = x->src[0];
      int perm[MAX_RANK];
      bool ident = true;
      for (int k = 0; k < x->shape.rank; k++) {
        perm[k] = inner->a.perm[x->a.perm[k]];
        ident &= perm[k] == k;
      }
      if (ident && inner->src[0]->dtype == x->dtype) {
        graph_replace(g, x, inner->src[0]);
      } else {
        memcpy(x->a.perm, perm, sizeof perm);
        x->src[0] = inner->src[0];
      }
      changed++;
    }
  }
  graph_resolve_all(g);
  return changed;
}
