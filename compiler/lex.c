/*
 * lex.c - model source text -> token list.
 *
 * Newlines end statements, except inside ( ) and [ ], so a long call can span
 * lines; { } (a function's body) holds statements, so newlines stay tokens
 * there and the parser matches the braces.  Brackets are matched here, which lets the lexer point at the exact
 * opening bracket of an unterminated construct.  Every byte sequence either
 * lexes or yields one diagnostic; nothing is read past src->len.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

typedef struct Lexer {
  Arena *arena;
  const Source *src;
  Diags *diags;
  size_t pos;
  int line;
  size_t line_start;
} Lexer;

static Loc loc_at(const Lexer *L, size_t off, int len) {
  return (Loc){.src = L->src, .line = L->line,
               .col = (int)(off - L->line_start) + 1,
               .len = len < 1 ? 1 : len, .off = off};
}

static Token *fail(Lexer *L, size_t off, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static Token *fail(Lexer *L, size_t off, int len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(L->arena, L->diags, DIAG_ERROR, loc_at(L, off, len), fmt, ap);
  va_end(ap);
  return NULL;
}

bool tok_is(const Token *t, const char *s) {
  return (t->kind == T_PUNCT || t->kind == T_IDENT) &&
         (int)strlen(s) == t->len && memcmp(t->text, s, (size_t)t->len) == 0;
}

static bool is_ident_start(int c) { return isalpha(c) || c == '_'; }
static bool is_ident_char(int c) { return isalnum(c) || c == '_'; }

/* number = digits ("." digits?)? (("e"|"E") ("+"|"-")? digits)?
 *        | "." digits exponent? */
static bool lex_number(Lexer *L, Token *t) {
  const char *s = L->src->text;
  size_t p = L->pos, n = L->src->len;
  bool is_float = false;
  while (p < n && isdigit((unsigned char)s[p])) p++;
  if (p < n && s[p] == '.') {
    is_float = true;
    p++;
    while (p < n && isdigit((unsigned char)s[p])) p++;
  }
  if (p < n && (s[p] == 'e' || s[p] == 'E')) {
    is_float = true;
    p++;
    if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    if (p >= n || !isdigit((unsigned char)s[p])) {
      while (p < n && (isalnum((unsigned char)s[p]) || s[p] == '.')) p++;
      fail(L, L->pos, (int)(p - L->pos), "bad number '%.*s': exponent has no digits",
           (int)(p - L->pos), s + L->pos);
      return false;
    }
    while (p < n && isdigit((unsigned char)s[p])) p++;
  }
  /* "1.2.3", "12abc", "3e5x" are one bad token, not two good ones. */
  if (p < n && (is_ident_char((unsigned char)s[p]) || s[p] == '.')) {
    size_t q = p;
    while (q < n && (is_ident_char((unsigned char)s[q]) || s[q] == '.')) q++;
    fail(L, L->pos, (int)(q - L->pos), "bad number '%.*s'", (int)(q - L->pos),
         s + L->pos);
    return false;
  }
  char buf[64];
  size_t len = p - L->pos;
  if (len >= sizeof buf) {
    fail(L, L->pos, (int)len, "number too long (%zu characters)", len);
    return false;
  }
  memcpy(buf, s + L->pos, len);
  buf[len] = 0;
  errno = 0;
  t->fval = strtod(buf, NULL);
  if (errno == ERANGE && isinf(t->fval)) {
    fail(L, L->pos, (int)len, "number '%s' is out of range", buf);
    return false;
  }
  if (!is_float) {
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE || v > INT64_MAX / 2) {
      fail(L, L->pos, (int)len, "integer '%s' is too large", buf);
      return false;
    }
  }
  t->kind = is_float ? T_FLOAT : T_INT;
  t->len = (int)len;
  L->pos = p;
  return true;
}

/* t, copied into the arena; NULL after an error when the file has more
 * tokens than MAX_TOKENS (compiler.h: what bounds the memory). */
static Token *keep(Lexer *L, const Token *t, long *count) {
  if (++*count > MAX_TOKENS) {
    fail(L, t->loc.off, t->loc.len, "the model has more than %d tokens (names, numbers, "
         "operators); the limit bounds the compiler's memory", MAX_TOKENS);
    return NULL;
  }
  Token *k = arena_alloc(L->arena, sizeof *k);
  *k = *t;
  return k;
}

static const char *const puncts[] = {
    "**", "//", "==", "!=", "<=", ">=", "...", "+", "-", "*", "/", "%", "@", "(", ")", "[", "]",
    ",", "=", ":", "<", ">", "{", "}",
};

Token *lex(Arena *a, const Source *src, Diags *d) {
  Lexer L = {.arena = a, .src = src, .diags = d, .line = 1};
  Token head = {0}, *cur = &head;
  char open[MAX_DEPTH];
  size_t open_at[MAX_DEPTH];
  int open_line[MAX_DEPTH];
  size_t open_ls[MAX_DEPTH];
  int depth = 0;
  const char *s = src->text;

  long ntokens = 0;

  for (;;) {
    size_t n = src->len;
    while (L.pos < n && (s[L.pos] == ' ' || s[L.pos] == '\t')) L.pos++;
    if (L.pos < n && s[L.pos] == '#') {
      while (L.pos < n && s[L.pos] != '\n' && s[L.pos] != '\r') L.pos++;
      continue;
    }
    /* Built here, copied into the arena only when kept (keep): a newline
     * inside brackets or after another costs nothing. */
    Token tk = {0}, *t = &tk;
    t->text = s + L.pos;
    t->loc = loc_at(&L, L.pos, 1);
    if (L.pos >= n) {
      if (depth > 0) {
        Lexer at = L;
        at.line = open_line[depth - 1];
        at.line_start = open_ls[depth - 1];
        return fail(&at, open_at[depth - 1], 1,
                    "unterminated '%c': missing '%c' before the end of the file",
                    open[depth - 1], open[depth - 1] == '(' ? ')' : ']');
      }
      t->kind = T_EOF;
      if (!(cur->next = keep(&L, t, &ntokens))) return NULL;
      break;
    }
    unsigned char c = (unsigned char)s[L.pos];
    /* A line ends in \n, \r\n or a lone \r (classic Mac OS files): each
     * is one line, for the statements and for the line numbers. */
    if (c == '\n' || c == '\r') {
      L.pos += c == '\r' && L.pos + 1 < n && s[L.pos + 1] == '\n' ? 2 : 1;
      /* Blank lines end no statement: one token for a run of them. */
      if (depth == 0 && cur->kind != T_NEWLINE) {
        t->kind = T_NEWLINE;
        if (!(cur = cur->next = keep(&L, t, &ntokens))) return NULL;
      }
      L.line++;
      L.line_start = L.pos;
      continue;
    }
    if (isdigit(c) || (c == '.' && L.pos + 1 < n && isdigit((unsigned char)s[L.pos + 1]))) {
      if (!lex_number(&L, t)) return NULL;
      t->loc.len = t->len;
      if (!(cur = cur->next = keep(&L, t, &ntokens))) return NULL;
      continue;
    }
    if (is_ident_start(c)) {
      /* Dotted names (dense1.kernel) are one identifier; so is the
       * stem of the pattern D.* (train ... of D.*), which the parser
       * joins with the adjacent '*'. */
      size_t p = L.pos + 1;
      while (p < n && (is_ident_char((unsigned char)s[p]) ||
                       (s[p] == '.' && p + 1 < n &&
                        (is_ident_start((unsigned char)s[p + 1]) || s[p + 1] == '*'))))
        p++;
      if (p - L.pos > 200)
        return fail(&L, L.pos, 1, "identifier too long (%zu characters, at most 200)",
                    p - L.pos);
      t->kind = T_IDENT;
      t->len = (int)(p - L.pos);
      t->loc.len = t->len;
      L.pos = p;
      if (!(cur = cur->next = keep(&L, t, &ntokens))) return NULL;
      continue;
    }
    bool matched = false;
    for (size_t i = 0; i < sizeof puncts / sizeof *puncts; i++) {
      size_t pl = strlen(puncts[i]);
      if (L.pos + pl <= n && memcmp(s + L.pos, puncts[i], pl) == 0) {
        t->kind = T_PUNCT;
        t->len = (int)pl;
        t->loc.len = (int)pl;
        matched = true;
        break;
      }
    }
    if (!matched) {
      if (c >= 32 && c < 127)
        return fail(&L, L.pos, 1, "unexpected character '%c'", c);
      return fail(&L, L.pos, 1, "unexpected byte 0x%02x (model files are ASCII text)", c);
    }
    if (c == '(' || c == '[') {
      if (depth == MAX_DEPTH)
        return fail(&L, L.pos, 1, "brackets nested too deeply (more than %d)", MAX_DEPTH);
      open[depth] = (char)c;
      open_at[depth] = L.pos;
      open_line[depth] = L.line;
      open_ls[depth] = L.line_start;
      depth++;
    } else if (c == ')' || c == ']') {
      char want = c == ')' ? '(' : '[';
      if (depth == 0) return fail(&L, L.pos, 1, "unmatched '%c'", c);
      if (open[depth - 1] != want)
        return fail(&L, L.pos, 1, "'%c' does not match the '%c' opened at line %d",
                    c, open[depth - 1], open_line[depth - 1]);
      depth--;
    }
    L.pos += (size_t)t->len;
    if (!(cur = cur->next = keep(&L, t, &ntokens))) return NULL;
  }
  return head.next;
}
