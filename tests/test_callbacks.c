/*
 * test_callbacks.c - gradc train's Keras callbacks (cli/callbacks.c, issue
 * 22) on scripted curves: the epoch each one acts at, worked out by hand
 * from Keras 2.x's callbacks.py (EarlyStopping, ModelCheckpoint with
 * save_best_only, ReduceLROnPlateau), and the option parser's defaults and
 * refusals.  The end-to-end run (a model whose validation loss rises) is
 * in run_cli_tests.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "cli.h"

static Callback parsed(const char *opt, const char *spec) {
  Callback cb;
  char msg[512];
  if (!cb_parse(opt, spec, &cb, msg, sizeof msg)) print_error("%s\n", msg);
  assert_true(cb_parse(opt, spec, &cb, msg, sizeof msg));
  return cb;
}

/* The action at each epoch of curve, as letters: . none, i improved,
 * s stop, r reduce; feeding stops at a stop, as train.c does. */
static void actions(Callback cb, CbAction (*rule)(Callback *, int, double), const double *curve, int n,
                    const char *want) {
  char got[64] = "";
  for (int e = 0; e < n; e++) {
    CbAction a = rule(&cb, e, curve[e]);
    got[e] = ".isr"[a];
    got[e + 1] = 0;
    if (a == CB_STOP) break;
  }
  if (strcmp(got, want)) {
    print_error("want %s, got %s\n", want, got);
    fail();
  }
}

static void test_early_stopping(void **state) {
  (void)state;
  const double rises[] = {1.0, 0.8, 0.85, 0.9, 0.95, 0.7};
  /* best at epoch 1 (0-based); the third epoch without improvement stops */
  Callback cb = parsed("--early-stopping", "val_loss,patience=3,restore_best");
  actions(cb, cb_early_stopping, rises, 6, "ii..s");
  assert_true(cb.restore_best);
  /* min_delta: 0.95 and 0.92 are not 0.1 better than 1.0 */
  const double slow[] = {1.0, 0.95, 0.92, 0.85};
  actions(parsed("--early-stopping", "val_loss,patience=2,min_delta=0.1"), cb_early_stopping, slow, 4, "i.s");
  /* patience 0 stops at the first epoch without improvement, never the
   * first epoch (Keras: epoch > 0); NaN is no improvement */
  const double up[] = {1, 2};
  actions(parsed("--early-stopping", "loss"), cb_early_stopping, up, 2, "is");
  const double nan1[] = {NAN, 1};
  actions(parsed("--early-stopping", "loss"), cb_early_stopping, nan1, 2, ".i");
  /* mode auto: accuracy is better larger; equal is no improvement */
  const double acc[] = {0.5, 0.6, 0.6, 0.55};
  actions(parsed("--early-stopping", "val_accuracy,patience=2"), cb_early_stopping, acc, 4, "ii.s");
  actions(parsed("--early-stopping", "val_accuracy,patience=2,mode=min"), cb_early_stopping, acc, 4, "i.s");
  /* start_from_epoch: the first epochs are not watched */
  actions(parsed("--early-stopping", "loss,start_from_epoch=2"), cb_early_stopping, rises, 6, "..is");
  /* the best epoch is kept for the restore message */
  Callback c2 = parsed("--early-stopping", "val_loss,patience=3");
  for (int e = 0; e < 5; e++) cb_early_stopping(&c2, e, rises[e]);
  assert_int_equal(c2.best_epoch, 1);
  assert_true(c2.best == 0.8);
}

static void test_save_best(void **state) {
  (void)state;
  const double curve[] = {1, 0.9, 0.95, 0.9, 0.5};
  actions(parsed("--monitor", "val_loss"), cb_save_best, curve, 5, "ii..i");
  const double acc[] = {0.5, 0.4, 0.7};
  actions(parsed("--monitor", "accuracy"), cb_save_best, acc, 3, "i.i");
}

static void test_reduce_lr(void **state) {
  (void)state;
  /* Keras' defaults: factor 0.1, patience 10, min_delta 1e-4 */
  Callback d = parsed("--reduce-lr-on-plateau", "val_loss");
  assert_true(d.factor == 0.1 && d.patience == 10 && d.min_delta == 1e-4 && d.cooldown == 0);
  const double flat[] = {1, 1, 1, 1, 1, 1, 1};
  /* patience 2, cooldown 1: epoch 2 reduces; epoch 3 is cooldown (the
   * wait restarts); epoch 4 reduces again, ... */
  actions(parsed("--reduce-lr-on-plateau", "val_loss,factor=0.5,patience=2,cooldown=1"), cb_reduce_lr, flat, 7,
          "i.r.r.r");
  actions(parsed("--reduce-lr-on-plateau", "val_loss,patience=2"), cb_reduce_lr, flat, 7, "i.r.r.r");
  /* an improvement smaller than min_delta is none */
  const double tiny[] = {1, 0.99995, 0.9999, 0.5};
  actions(parsed("--reduce-lr-on-plateau", "loss,patience=2"), cb_reduce_lr, tiny, 4, "i.ri");
}

static void test_parse_errors(void **state) {
  (void)state;
  static const struct {
    const char *opt, *spec, *msg;
  } cases[] = {
      {"--early-stopping", "patience=3", "--early-stopping: name the monitored value first, e.g. val_loss,patience=3"},
      {"--early-stopping", "val_loss,patience=-1", "--early-stopping: patience takes an integer in [0, 1e+06], got '-1'"},
      {"--early-stopping", "val_loss,factor=0.5", "--early-stopping: unknown option 'factor=0.5'; it takes patience=N"},
      {"--reduce-lr-on-plateau", "val_loss,factor=1", "--reduce-lr-on-plateau: factor takes a number in [0, 0.999999], got '1'"},
      {"--reduce-lr-on-plateau", "val_loss,restore_best", "--reduce-lr-on-plateau: unknown option 'restore_best'"},
      {"--early-stopping", "val_loss,mode=up", "--early-stopping: mode takes min, max or auto, got 'up'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Callback cb;
    char msg[512];
    assert_false(cb_parse(cases[i].opt, cases[i].spec, &cb, msg, sizeof msg));
    if (strncmp(msg, cases[i].msg, strlen(cases[i].msg))) {
      print_error("case %zu: want %s\ngot  %s\n", i, cases[i].msg, msg);
      fail();
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_early_stopping),
      cmocka_unit_test(test_save_best),
      cmocka_unit_test(test_reduce_lr),
      cmocka_unit_test(test_parse_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
