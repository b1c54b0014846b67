/*
 * rewrite.c - what every optimizer pass needs to change a graph safely.
 *
 * graph_replace redirects every use of one node to another (the graph's
 * outputs, metrics, losses, gradient tables and state updates at once,
 * operands lazily: see compiler.h); the old node stays in the array, dead.
 * graph_root_copy goes the other way: the outputs, metrics and loss bound
 * to a leaf get a copy of it, a node of their own, while every operand
 * keeps the leaf.  graph_dce then drops every node that no root reaches
 * and renumbers the rest, so ids stay dense indices in topological order,
 * which the evaluator, codegen and the runtime index their tables by.
 *
 * Roots: outputs, metrics, the losses, parameter gradients, every ASSIGN
 * and state update, and the graph's leaves that carry state (inputs,
 * parameters, optimizer slots: the runtime addresses them by name even
 * when nothing reads them).
 */
#include <string.h>

#include "compiler.h"

static Node *current(Node *n) {
  while (n->moved) n = n->moved;
  return n;
}

void graph_resolve(Node *n) {
  for (int k = 0; k < n->nsrc; k++) n->src[k] = current(n->src[k]);
}

void graph_resolve_all(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) graph_resolve(g->nodes[i]);
}

void graph_replace(Graph *g, Node *old, Node *new_node) {
  new_node = current(new_node);
  GRADC_ASSERT(old != new_node && !old->moved);
  old->moved = new_node;
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == old) g->outputs[i].node = new_node;
  for (int i = 0; i < g->nmetrics; i++)
    if (g->metrics[i].node == old) g->metrics[i].node = new_node;
  for (int s = 0; s < g->nsteps; s++) {
    TrainStep *st = &g->steps[s];
    for (int i = 0; i < st->ngrads; i++)
      if (st->grads[i].grad == old) st->grads[i].grad = new_node;
    if (st->loss == old) st->loss = new_node;
  }
  for (int i = 0; i < g->nupdates; i++) {
    if (g->updates[i].state == old) g->updates[i].state = new_node;
    if (g->updates[i].value == old) g->updates[i].value = new_node;
    if (g->updates[i].add == old) g->updates[i].add = new_node;
  }
  /* Roles move with the value; a name moves if the new node has none. */
  new_node->flags |= old->flags & (N_OUTPUT | N_METRIC | N_LOSS | N_GRAD);
  old->flags &= ~(unsigned)(N_OUTPUT | N_METRIC | N_LOSS | N_GRAD);
  if (!new_node->name) new_node->name = old->name;
}

Node *graph_root_copy(Graph *g, Node *leaf) {
  Attrs a = {.to = leaf->shape};
  Node *c = graph_node(g, OP_RESHAPE, &leaf, 1, &a, leaf->loc);
  GRADC_ASSERT(c);        /* the same shape: always valid */
  /* right after the leaf, ids renumbered: still a topological order */
  int at = leaf->id + 1;
  memmove(&g->nodes[at + 1], &g->nodes[at], sizeof(Node *) * (size_t)(g->nnodes - 1 - at));
  g->nodes[at] = c;
  for (int i = at; i < g->nnodes; i++) g->nodes[i]->id = i;
  /* named after its first binding (output w = W: the copy is w) */
  c->name = leaf->name;
  for (int i = g->nmetrics - 1; i >= 0; i--)
    if (g->metrics[i].node == leaf) g->metrics[i].node = c, c->name = g->metrics[i].name;
  for (int i = g->noutputs - 1; i >= 0; i--)
    if (g->outputs[i].node == leaf) g->outputs[i].node = c, c->name = g->outputs[i].name;
  for (int s = 0; s < g->nsteps; s++)
    if (g->steps[s].loss == leaf) g->steps[s].loss = c, c->name = leaf->name;
  c->flags |= leaf->flags & (N_OUTPUT | N_METRIC | N_LOSS);
  leaf->flags &= ~(unsigned)(N_OUTPUT | N_METRIC | N_LOSS);
  c->fwd = leaf->fwd;
  c->rule = leaf->rule;
  return c;
}

static bool is_root(const Graph *g, const Node *n) {
  if (n->flags & (N_OUTPUT | N_METRIC | N_LOSS | N_GRAD)) return true;
  if (op_info[n->op].flags & (F_NAMED | F_EFFECT)) return true;
  (void)g;
  return false;
}

/* What renumber carries while it orders the nodes. */
typedef struct Order {
  Graph *g;
  bool *seen;            /* by old id */
  bool *loop_placed;     /* by loop number */
  bool keep_all;
  Node **order;
  int n;
  /* place's explicit stack, shared by nested calls (each node is pushed
   * once in all, so nnodes entries are enough) */
  Node **stack;
  int *at, top;
} Order;

static void place_loop(Order *o, int l);

/* Appends root and everything it reads, operands first (iteratively: a
 * long chain of bindings must not exhaust the C stack).  A node of a loop
 * body not yet placed places its whole loop (place_loop). */
static void place(Order *o, Node *root) {
  if (root->a.loop && !o->loop_placed[root->a.loop]) place_loop(o, root->a.loop);
  if (o->seen[root->id]) return;
  Node **stack = o->stack;
  int *at = o->at, base = o->top;
  stack[o->top] = root;
  at[o->top++] = 0;
  o->seen[root->id] = true;
  while (o->top > base) {
    int top = o->top;
    Node *x = stack[top - 1];
    if (at[top - 1] < x->nsrc) {
      Node *s = x->src[at[top - 1]++];
      if (s->a.loop && !o->loop_placed[s->a.loop]) place_loop(o, s->a.loop);
      if (!o->seen[s->id]) {
        o->seen[s->id] = true;
        stack[o->top] = s;
        at[o->top++] = 0;
      }
    } else {
      o->order[o->n++] = x;
      o->top--;
    }
  }
}

/* A loop's body in one piece: first every outside value it reads, then the
 * body (what its loop_end reaches and its carries, or with keep_all every
 * node of the loop) in operand order, the loop_end last. */
static void place_loop(Order *o, int l) {
  Graph *g = o->g;
  o->loop_placed[l] = true;
  Node *e = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_LOOP_END && g->nodes[i]->a.loop == l) e = g->nodes[i];
  GRADC_ASSERT(e);
  bool *in = arena_alloc(g->arena, (size_t)g->nnodes);
  Node **body = arena_alloc(g->arena, sizeof(Node *) * (size_t)g->nnodes);
  int nb = 0;
  in[e->id] = true;
  body[nb++] = e;
  for (int i = 0; i < g->nnodes; i++) {
    Node *x = g->nodes[i];
    if (x->a.loop == l && !in[x->id] && !x->moved &&
        (o->keep_all || (x->op == OP_CARRY && x->a.slot < e->a.slot))) {
      in[x->id] = true;
      body[nb++] = x;
    }
  }
  for (int k = 0; k < nb; k++)
    for (int j = 0; j < body[k]->nsrc; j++) {
      Node *s = body[k]->src[j];
      if (s->a.loop == l && !in[s->id]) in[s->id] = true, body[nb++] = s;
    }
  for (int k = 0; k < nb; k++)
    for (int j = 0; j < body[k]->nsrc; j++)
      if (body[k]->src[j]->a.loop != l) place(o, body[k]->src[j]);
  for (int i = 0; i < g->nnodes; i++)
    if (in[i] && g->nodes[i] != e) place(o, g->nodes[i]);
  o->seen[e->id] = true;
  o->order[o->n++] = e;
}

/* Renumbers the graph in topological order, the assigns last: the nodes
 * the roots reach (dce), or every node (keep_all), each placed after its
 * operands and otherwise in its old order, so a graph already in order
 * keeps its numbering; each loop's body stays in one piece. */
static int renumber(Graph *g, bool keep_all) {
  graph_resolve_all(g);
  int total = g->nnodes;
  Order o = {.g = g, .keep_all = keep_all};
  o.seen = arena_alloc(g->arena, (size_t)total);
  o.loop_placed = arena_alloc(g->arena, (size_t)g->nscans + 1);
  o.order = arena_alloc(g->arena, sizeof(Node *) * (size_t)total);
  o.stack = arena_alloc(g->arena, sizeof(Node *) * (size_t)total);
  o.at = arena_alloc(g->arena, sizeof(int) * (size_t)total);
  /* Data parallel: every gradient's reduction (and so the whole backward
   * pass) before the first update reads a sum, so that the reductions
   * run while the backward pass goes on and the callback can fuse them
   * into buckets; placed from the assigns, an update would come right
   * after its own gradient and make the step wait for that sum there. */
  for (int i = 0; i < total; i++)
    if (g->nodes[i]->op == OP_ALLREDUCE) place(&o, g->nodes[i]);
  /* The state updates (batch norm's moving statistics) become assigns
   * only in the update stage; before it, nothing else reaches them. */
  bool *updated = arena_alloc(g->arena, (size_t)total);
  for (int i = 0; i < g->nupdates; i++) {
    StateUpdate *u = &g->updates[i];
    u->state = current(u->state), u->value = current(u->value);
    if (u->add) u->add = current(u->add);
    updated[u->state->id] = updated[u->value->id] = true;
    if (u->add) updated[u->add->id] = true;
  }
  /* Everything but the assigns first, then the assigns: all reads of the
   * step before any write (see autodiff.c). */
  for (int i = 0; i < total; i++) {
    Node *x = g->nodes[i];
    if (x->op == OP_ASSIGN) {
      place(&o, x->src[0]);
      place(&o, x->src[1]);
    } else if (keep_all || is_root(g, x) || updated[i]) {
      place(&o, x);
    }
  }
  int n = o.n;
  for (int i = 0; i < total; i++)
    if (g->nodes[i]->op == OP_ASSIGN) {
      o.seen[g->nodes[i]->id] = true;
      o.order[n++] = g->nodes[i];
    }
  for (int i = 0; i < n; i++) {
    g->nodes[i] = o.order[i];
    g->nodes[i]->id = i;
  }
  g->nnodes = n;
  return total - n;
}

int graph_dce(Graph *g) { return renumber(g, false); }

void graph_sort(Graph *g) { renumber(g, true); }

static bool init_eq(const Init *x, const Init *y) {
  return x->kind == y->kind && x->a == y->a && x->b == y->b;
}

/* A constant's (or an INIT_VALUES parameter's) elements, by content: the
 * node's element count of them (shapes are already equal). */
static bool values_eq(const Node *a, const double *x, const double *y) {
  if (!x || !y) return x == y;
  int64_t c = shape_static_count(&a->shape);
  return memcmp(x, y, sizeof(double) * (size_t)(c > 0 ? c : 1)) == 0;
}

#define ATTR_EQ(f) (x->f == y->f)
#define ATTR_BYTES(f) (memcmp(&x->f, &y->f, sizeof x->f) == 0)
#define ATTR_SHAPE(f) shape_eq(&x->f, &y->f)
#define ATTR_INIT(f) init_eq(&x->f, &y->f)
#define ATTR_VALUES(f) values_eq(a, x->f, y->f)

/* Two nodes compute the same value if op, dtype, shape, operands and
 * attributes agree; the attributes are compared as GRADC_ATTRS says, field
 * by field (the struct has padding). */
bool graph_same_node(const Node *a, const Node *b) {
  if (a->op != b->op || a->dtype != b->dtype || a->nsrc != b->nsrc || !shape_eq(&a->shape, &b->shape))
    return false;
  for (int k = 0; k < a->nsrc; k++)
    if (a->src[k] != b->src[k]) return false;
  const Attrs *x = &a->a, *y = &b->a;
#define ATTR(type, name, array, compare) \
  if (!compare(name)) return false;
  GRADC_ATTRS(ATTR)
#undef ATTR
  return true;
}
