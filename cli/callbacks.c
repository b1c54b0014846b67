/*
 * callbacks.c - Keras' fit callbacks for `gradc train` (issue 22):
 * EarlyStopping (--early-stopping), ModelCheckpoint with save_best_only
 * (--save-best) and ReduceLROnPlateau (--reduce-lr-on-plateau).
 *
 * Each is a small state machine fed one monitored value per epoch (the
 * epoch's mean loss or metric, or its validation value) and answering what
 * to do; train.c looks the value up and does it.  The rules follow Keras
 * 2.x's callbacks.py line by line (cited at each), so the same curve stops
 * at the same epoch: an improvement is current < best - min_delta (mode
 * min) or current > best + min_delta (mode max), best starting at +-inf,
 * and mode auto is max for names ending in acc, accuracy or auc.
 *
 * restore_best keeps a copy of the parameters and the model's own state
 * (batch norm's moving statistics: Keras' get_weights) from the best
 * epoch, never the optimizer's slots, counter or hyperparameters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runtime.h"

/* ------------------------------------------------------------ parsing */

static bool ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), k = strlen(tail);
  return n >= k && !strcmp(s + n - k, tail);
}

/* Keras' mode='auto' (EarlyStopping._set_monitor_op). */
static bool auto_max(const char *monitor) {
  return ends_with(monitor, "acc") || ends_with(monitor, "accuracy") || ends_with(monitor, "auc");
}

static bool spec_fail(char *msg, size_t len, const char *opt, const char *fmt, const char *what) {
  char detail[256];
  snprintf(detail, sizeof detail, fmt, what);
  snprintf(msg, len, "%s: %s", opt, detail);
  return false;
}

static bool spec_number(const char *opt, const char *key, const char *v, double lo, double hi, bool integer,
                        double *out, char *msg, size_t len) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= lo && x <= hi) || (integer && x != floor(x))) {
    snprintf(msg, len, "%s: %s takes %s in [%g, %g], got '%s'", opt, key, integer ? "an integer" : "a number",
             lo, hi, v);
    return false;
  }
  *out = x;
  return true;
}

/* MONITOR[,key=value|flag]...: the monitor first, then the options
 * keys allows (comma-separated). */
bool cb_parse(const char *opt, const char *spec, Callback *cb, char *msg, size_t len) {
  bool reduce = !strcmp(opt, "--reduce-lr-on-plateau");
  *cb = (Callback){.on = true, .patience = reduce ? 10 : 0, .factor = 0.1, .min_delta = reduce ? 1e-4 : 0};
  char buf[256];
  if (strlen(spec) >= sizeof buf) return spec_fail(msg, len, opt, "the value is too long (%s)", "at most 255 bytes");
  snprintf(buf, sizeof buf, "%s", spec);
  char *save = NULL, *tok = strtok_r(buf, ",", &save);
  if (!tok || strchr(tok, '='))
    return spec_fail(msg, len, opt, "%s", "name the monitored value first, e.g. val_loss,patience=3");
  snprintf(cb->monitor, sizeof cb->monitor, "%s", tok);
  cb->max = auto_max(cb->monitor);
  while ((tok = strtok_r(NULL, ",", &save))) {
    char *eq = strchr(tok, '=');
    const char *v = eq ? eq + 1 : NULL;
    if (eq) *eq = 0;
    double x;
    if (!strcmp(tok, "patience") && v) {
      if (!spec_number(opt, tok, v, 0, 1e6, true, &x, msg, len)) return false;
      cb->patience = (int)x;
    } else if (!strcmp(tok, "min_delta") && v) {
      if (!spec_number(opt, tok, v, 0, 1e300, false, &x, msg, len)) return false;
      cb->min_delta = x;
    } else if (!strcmp(tok, "mode") && v) {
      if (strcmp(v, "min") && strcmp(v, "max") && strcmp(v, "auto"))
        return spec_fail(msg, len, opt, "mode takes min, max or auto, got '%s'", v);
      cb->max = !strcmp(v, "auto") ? auto_max(cb->monitor) : !strcmp(v, "max");
    } else if (!reduce && !strcmp(tok, "restore_best") && !v) {
      cb->restore_best = true;
    } else if (!reduce && !strcmp(tok, "start_from_epoch") && v) {
      if (!spec_number(opt, tok, v, 0, 1e6, true, &x, msg, len)) return false;
      cb->start_from_epoch = (int)x;
    } else if (reduce && !strcmp(tok, "factor") && v) {
      /* Keras refuses factor >= 1.0 */
      if (!spec_number(opt, tok, v, 0, 0.999999, false, &x, msg, len)) return false;
      cb->factor = x;
    } else if (reduce && !strcmp(tok, "cooldown") && v) {
      if (!spec_number(opt, tok, v, 0, 1e6, true, &x, msg, len)) return false;
      cb->cooldown = (int)x;
    } else if (reduce && !strcmp(tok, "min_lr") && v) {
      if (!spec_number(opt, tok, v, 0, 1e6, false, &x, msg, len)) return false;
      cb->min_lr = x;
    } else {
      snprintf(msg, len, "%s: unknown option '%s%s%s'; it takes %s", opt, tok, v ? "=" : "", v ? v : "",
               reduce ? "factor=F, patience=N, min_delta=D, cooldown=N, min_lr=X, mode=min|max|auto"
                      : "patience=N, min_delta=D, restore_best, start_from_epoch=N, mode=min|max|auto");
      return false;
    }
  }
  cb->best = cb->max ? -INFINITY : INFINITY;
  return true;
}

/* ------------------------------------------------------------ the rules */

static bool improved(const Callback *cb, double current, double min_delta) {
  return cb->max ? current - min_delta > cb->best : current + min_delta < cb->best;
}

/* EarlyStopping.on_epoch_end (Keras 2.11): wait counts epochs since the
 * best; stopping needs wait >= patience and not the first epoch. */
CbAction cb_early_stopping(Callback *cb, int epoch, double current) {
  if (epoch < cb->start_from_epoch) return CB_NONE;
  cb->wait++;
  if (improved(cb, current, cb->min_delta)) {
    cb->best = current;
    cb->best_epoch = epoch;
    cb->wait = 0;
    return CB_IMPROVED;
  }
  if (cb->wait >= cb->patience && epoch > 0) return CB_STOP;
  return CB_NONE;
}

/* ModelCheckpoint(save_best_only=True): any improvement, no min_delta. */
CbAction cb_save_best(Callback *cb, int epoch, double current) {
  if (!improved(cb, current, 0)) return CB_NONE;
  cb->best = current;
  cb->best_epoch = epoch;
  return CB_IMPROVED;
}

/* ReduceLROnPlateau.on_epoch_end: the cooldown counts down first; an
 * improvement resets the wait; outside the cooldown, patience epochs
 * without one reduce the rate and start the cooldown. */
CbAction cb_reduce_lr(Callback *cb, int epoch, double current) {
  (void)epoch;
  if (cb->cooldown_left > 0) {
    cb->cooldown_left--;
    cb->wait = 0;
  }
  if (improved(cb, current, cb->min_delta)) {
    cb->best = current;
    cb->wait = 0;
    return CB_IMPROVED;
  }
  if (cb->cooldown_left > 0) return CB_NONE;
  if (++cb->wait < cb->patience) return CB_NONE;
  cb->wait = 0;
  cb->cooldown_left = cb->cooldown;
  return CB_REDUCE;
}

/* ------------------------------------------------------------ weights */

struct Snapshot {
  int n;
  char **names;
  void **data;
  size_t *bytes;
};

static size_t dtype_bytes(gradc_dtype t) {
  return t == GRADC_F64 ? 8 : t == GRADC_BOOL ? 1 : 4;
}

/* The model's own state: STATE nodes no optimizer made (theirs carry the
 * rule that made them). */
static bool model_state(const Graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_STATE && n->name && !strcmp(n->name, name)) return !n->rule;
  }
  return false;
}

void cb_snapshot_free(Snapshot *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) free(s->names[i]), free(s->data[i]);
  free(s->names), free(s->data), free(s->bytes);
  free(s);
}

/* Copies the parameters and model state into *sp (made on first use). */
gradc_status cb_snapshot_take(gradc_model *m, const Graph *g, Snapshot **sp, RtError *err) {
  Snapshot *s = *sp;
  int count = gradc_tensor_count(m);
  if (!s) {
    s = *sp = calloc(1, sizeof *s);
    if (s) {
      s->names = calloc((size_t)count + 1, sizeof *s->names);
      s->data = calloc((size_t)count + 1, sizeof *s->data);
      s->bytes = calloc((size_t)count + 1, sizeof *s->bytes);
    }
    if (!s || !s->names || !s->data || !s->bytes) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
      gradc_tensor t;
      if (gradc_tensor_info(m, i, &t)) continue;
      if (t.kind != GRADC_PARAM && !(t.kind == GRADC_STATE && model_state(g, t.name))) continue;
      s->names[s->n] = strdup(t.name);
      s->bytes[s->n] = (size_t)t.count * dtype_bytes(t.dtype);
      s->data[s->n] = malloc(s->bytes[s->n] ? s->bytes[s->n] : 1);
      if (!s->names[s->n] || !s->data[s->n]) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
      s->n++;
    }
  }
  for (int i = 0; i < s->n; i++) {
    const void *p = gradc_data(m, s->names[i], NULL);
    if (!p) return rt_fail(err, GRADC_ERR_ARG, "%s", gradc_last_error(m));
    memcpy(s->data[i], p, s->bytes[i]);
  }
  return GRADC_OK;
}

gradc_status cb_snapshot_restore(gradc_model *m, const Snapshot *s, RtError *err) {
  for (int i = 0; i < s->n; i++) {
    void *p = gradc_data(m, s->names[i], NULL);
    if (!p) return rt_fail(err, GRADC_ERR_ARG, "%s", gradc_last_error(m));
    memcpy(p, s->data[i], s->bytes[i]);
  }
  return GRADC_OK;
}
