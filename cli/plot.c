/*
 * plot.c - `gradc plot HISTORY.csv -o curves.svg` (issue 22): the
 * training curves of a history file as an SVG, one panel per quantity
 * (the loss, each metric), the training value against the validation
 * value ("val_" + its name) per epoch, with axes, ticks and a legend.
 *
 * Input: the CSV gradc train writes (header "epoch,loss,...,seconds";
 * empty fields - a step that did not run - are gaps).  Output: a
 * standalone SVG 1.1 file written by hand (no library: text, lines and
 * polylines), written to a temporary file and renamed.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { MAX_COLS = 64, MAX_ROWS = 100000, PANEL_W = 640, PANEL_H = 260 };
enum { LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 44 };

typedef struct History {
  int ncols, nrows;
  char *names[MAX_COLS];
  double *v;                 /* nrows x ncols, NAN for an empty field */
} History;

static void history_free(History *h) {
  for (int i = 0; i < h->ncols; i++) free(h->names[i]);
  free(h->v);
}

static void chomp(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

static gradc_status read_history(const char *path, History *h, RtError *err) {
  memset(h, 0, sizeof *h);
  FILE *f = fopen(path, "r");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot read the history '%s': %s", path, strerror(errno));
  char line[8192];
  gradc_status s = GRADC_OK;
  if (!fgets(line, sizeof line, f)) {
    s = rt_fail(err, GRADC_ERR_DATA, "%s: empty; expected a header such as epoch,loss,val_loss", path);
    goto out;
  }
  chomp(line);
  for (char *save = NULL, *t = strtok_r(line, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (h->ncols == MAX_COLS) {
      s = rt_fail(err, GRADC_ERR_DATA, "%s:1: more than %d columns", path, MAX_COLS);
      goto out;
    }
    h->names[h->ncols++] = strdup(t);
  }
  if (!h->ncols || strcmp(h->names[0], "epoch")) {
    s = rt_fail(err, GRADC_ERR_DATA, "%s:1: expected the header of a gradc train history, starting with 'epoch', "
                "found '%s'", path, h->ncols ? h->names[0] : "");
    goto out;
  }
  int cap = 0;
  for (int ln = 2; fgets(line, sizeof line, f); ln++) {
    chomp(line);
    if (!*line) continue;
    if (h->nrows == MAX_ROWS) {
      s = rt_fail(err, GRADC_ERR_DATA, "%s: more than %d epochs", path, MAX_ROWS);
      goto out;
    }
    if (h->nrows == cap) {
      cap = cap ? 2 * cap : 64;
      double *g = realloc(h->v, sizeof(double) * (size_t)cap * (size_t)h->ncols);
      if (!g) {
        s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
        goto out;
      }
      h->v = g;
    }
    double *row = h->v + (size_t)h->nrows * (size_t)h->ncols;
    char *p = line;
    for (int c = 0; c < h->ncols; c++) {
      char *e = strchr(p, ',');
      if (!e && c < h->ncols - 1) {
        s = rt_fail(err, GRADC_ERR_DATA, "%s:%d: expected %d fields (the header's), found %d", path, ln, h->ncols,
                    c + 1);
        goto out;
      }
      if (e) *e = 0;
      char *end;
      row[c] = *p ? strtod(p, &end) : NAN;
      if (*p && (*end || !isfinite(row[c]))) {
        s = rt_fail(err, GRADC_ERR_DATA, "%s:%d: field %d (%s) is '%s', expected a finite number", path, ln, c + 1,
                    h->names[c], p);
        goto out;
      }
      p = e ? e + 1 : p + strlen(p);
    }
    if (*p) {
      s = rt_fail(err, GRADC_ERR_DATA, "%s:%d: more fields than the header's %d", path, ln, h->ncols);
      goto out;
    }
    h->nrows++;
  }
  if (!h->nrows) s = rt_fail(err, GRADC_ERR_DATA, "%s: no epochs after the header", path);
out:
  fclose(f);
  return s;
}

/* ------------------------------------------------------------ drawing */

void svg_text(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '&') fputs("&amp;", f);
    else if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '"') fputs("&quot;", f);
    else fputc(*s, f);
  }
}

/* The prologue every picture of the CLI shares: SVG 1.1 (what
 * rsvg-convert and browsers read), a white page of w x h pixels. */
void svg_begin(FILE *f, int w, int h) {
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
          "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
          w, h, w, h);
}

/* A step of 1, 2 or 5 times a power of ten giving about n ticks. */
static double nice_step(double range, int n) {
  double raw = range / n, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static int column(const History *h, const char *name) {
  for (int c = 0; c < h->ncols; c++)
    if (!strcmp(h->names[c], name)) return c;
  return -1;
}

/* One panel at vertical offset y0: the column c (training) and v
 * (validation, or -1) against the epoch. */
static void panel(FILE *f, const History *h, int c, int v, int y0) {
  double lo = INFINITY, hi = -INFINITY, x0 = h->v[0], x1 = h->v[(size_t)(h->nrows - 1) * (size_t)h->ncols];
  for (int r = 0; r < h->nrows; r++)
    for (int k = 0; k < 2; k++) {
      int col = k ? v : c;
      if (col < 0) continue;
      double y = h->v[(size_t)r * (size_t)h->ncols + (size_t)col];
      if (isfinite(y)) lo = fmin(lo, y), hi = fmax(hi, y);
    }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * fmax(1, fabs(hi))) lo -= 0.5 * fmax(fabs(lo), 1e-3), hi += 0.5 * fmax(fabs(hi), 1e-3);
  double ys = nice_step(hi - lo, 5);
  lo = floor(lo / ys) * ys, hi = ceil(hi / ys) * ys;
  if (x1 <= x0) x1 = x0 + 1;
  double xs = nice_step(x1 - x0, 8);
  if (xs < 1) xs = 1;                      /* epochs are whole */
  double w = PANEL_W - LEFT - RIGHT, ht = PANEL_H - TOP - BOTTOM;
#define PX(x) (LEFT + ((x) - x0) / (x1 - x0) * w)
#define PY(y) (y0 + TOP + (hi - (y)) / (hi - lo) * ht)
  fprintf(f, "<g>\n<text x=\"%d\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">", LEFT, y0 + 22);
  svg_text(f, h->names[c]);
  fprintf(f, "</text>\n");
  /* grid and tick labels */
  for (double t = lo; t <= hi + ys * 1e-9; t += ys) {
    double tv = fabs(t) < ys * 1e-9 ? 0 : t;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", PX(x0), PY(tv),
            PX(x1), PY(tv));
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n", LEFT - 6,
            PY(tv) + 4, tv);
  }
  for (double t = ceil(x0 / xs) * xs; t <= x1 + 1e-9; t += xs)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n",
            PX(t), PY(lo), PX(t), PY(lo) + 5, PX(t), PY(lo) + 18, t);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\"/>\n", PX(x0), PY(lo), PX(x1),
          PY(lo));
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\"/>\n", PX(x0), PY(lo), PX(x0),
          PY(hi));
  fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">epoch</text>\n", PX((x0 + x1) / 2),
          y0 + PANEL_H - 8);
  /* the curves: a gap where a value is missing; a dot per epoch */
  static const char *const colour[2] = {"#1f77b4", "#ff7f0e"};
  for (int k = 0; k < 2; k++) {
    int col = k ? v : c;
    if (col < 0) continue;
    bool open = false;
    for (int r = 0; r < h->nrows; r++) {
      double x = h->v[(size_t)r * (size_t)h->ncols], y = h->v[(size_t)r * (size_t)h->ncols + (size_t)col];
      if (!isfinite(y)) {
        if (open) fputs("\"/>\n", f), open = false;
        continue;
      }
      if (!open)
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour[k],
                k ? " stroke-dasharray=\"6,3\"" : ""), open = true;
      fprintf(f, "%.1f,%.1f ", PX(x), PY(y));
    }
    if (open) fputs("\"/>\n", f);
    for (int r = 0; r < h->nrows; r++) {
      double x = h->v[(size_t)r * (size_t)h->ncols], y = h->v[(size_t)r * (size_t)h->ncols + (size_t)col];
      if (isfinite(y))
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", PX(x), PY(y), colour[k]);
    }
  }
  /* the legend, in the title's row, right-aligned: above the curves */
  for (int k = 0; k < 2; k++) {
    int col = k ? v : c;
    if (col < 0) continue;
    double lx = PANEL_W - RIGHT - (v >= 0 ? 210 : 100) + 110 * k, ly = y0 + 18;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", lx,
            ly, lx + 24, ly, colour[k], k ? " stroke-dasharray=\"6,3\"" : "");
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n", lx + 30, ly + 4,
            k ? "validation" : "training");
  }
  fputs("</g>\n", f);
#undef PX
#undef PY
}

gradc_status cli_plot(const char *csv, const char *svg, FILE *out, RtError *err) {
  History h;
  gradc_status s = read_history(csv, &h, err);
  if (s) {
    history_free(&h);
    return s;
  }
  /* the panels: each column but epoch, seconds and the val_ ones */
  int cols[MAX_COLS], vals[MAX_COLS], n = 0;
  for (int c = 1; c < h.ncols; c++) {
    if (!strcmp(h.names[c], "seconds") || !strncmp(h.names[c], "val_", 4)) continue;
    char vn[300];
    snprintf(vn, sizeof vn, "val_%s", h.names[c]);
    cols[n] = c, vals[n] = column(&h, vn), n++;
  }
  if (!n) {
    history_free(&h);
    return rt_fail(err, GRADC_ERR_DATA, "%s: nothing to plot: no loss or metric column", csv);
  }
  OutFile out_file;
  s = out_open(&out_file, svg, err);
  if (s) {
    history_free(&h);
    return s;
  }
  FILE *f = out_file.f;
  svg_begin(f, PANEL_W, PANEL_H * n);
  for (int i = 0; i < n; i++) panel(f, &h, cols[i], vals[i], PANEL_H * i);
  fputs("</svg>\n", f);
  if ((s = out_commit(&out_file, GRADC_OK, err))) {
    history_free(&h);
    return s;
  }
  fprintf(out, "plotted %d epochs of %d quantit%s to %s\n", h.nrows, n, n == 1 ? "y" : "ies", svg);
  history_free(&h);
  return GRADC_OK;
}
