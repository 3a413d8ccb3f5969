/* argv.c - shell-like splitting of a command line into words.
 *
 * Two passes over the text with one scanner: the first counts the words
 * and the bytes they need and finds any error; the second, run only on
 * valid text, writes the words into one allocation (the pointer array,
 * then the strings).  A word is never longer than the text, so the sizes
 * are bounded by ARGV_MAX_TEXT.
 */
#include "argv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the scanner is given and what it found. */
struct scan {
  const char *text;
  char **words; /* NULL in the counting pass */
  char *out;    /* where the next byte of a word goes (second pass) */
  size_t bytes; /* bytes the words need, with their NULs */
  int count;    /* words found */
  char *err;
  size_t errsize;
};

static int fail(struct scan *s, size_t at, const char *fmt, char c) {
  if (s->err && s->errsize) {
    char why[96];
    snprintf(why, sizeof why, fmt, c);
    snprintf(s->err, s->errsize, "column %zu: %s", at + 1, why);
  }
  return -EINVAL;
}

static void put(struct scan *s, char c) {
  if (s->out) *s->out++ = c;
  s->bytes++;
}

static int blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Scans the whole text; 0 or -EINVAL. */
static int scan(struct scan *s) {
  const char *t = s->text;
  size_t i = 0;
  for (;;) {
    while (blank(t[i])) i++;
    if (!t[i]) return 0;
    if (t[i] == '#') return fail(s, i, "'%c' would start a comment in a shell: quote it, or set shell = true", '#');
    if (s->count >= ARGV_MAX_WORDS) return fail(s, i, "more than 4096 words%c", ' ');
    if (s->words) s->words[s->count] = s->out;
    s->count++;
    while (t[i] && !blank(t[i])) {
      char c = t[i];
      if (c == '\'') {
        size_t open = i++;
        while (t[i] && t[i] != '\'') put(s, t[i++]);
        if (!t[i]) return fail(s, open, "unterminated %c...' quote", '\'');
        i++;
      } else if (c == '"') {
        size_t open = i++;
        while (t[i] && t[i] != '"') {
          if (t[i] == '$' || t[i] == '`')
            return fail(s, i, "'%c' is an expansion only a shell does: escape it, or set shell = true", t[i]);
          if (t[i] == '\\' && t[i + 1] && strchr("$`\"\\\n", t[i + 1])) i++;
          put(s, t[i++]);
        }
        if (!t[i]) return fail(s, open, "unterminated %c...\" quote", '"');
        i++;
      } else if (c == '\\') {
        if (!t[i + 1]) return fail(s, i, "a backslash '%c' ends the text", '\\');
        put(s, t[i + 1]);
        i += 2;
      } else if (strchr("|&;<>()$`", c)) {
        return fail(s, i, "'%c' needs a shell: quote it, or set shell = true", c);
      } else {
        put(s, c);
        i++;
      }
    }
    put(s, '\0');
  }
}

int argv_split(const char *text, char ***argv, int *argc, char *err, size_t errsize) {
  if (!text || !argv || !argc) return -EINVAL;
  struct scan s = {.text = text, .err = err, .errsize = errsize};
  if (strlen(text) > ARGV_MAX_TEXT) return fail(&s, ARGV_MAX_TEXT, "a command longer than 65536 bytes%c", ' ');
  int rc = scan(&s);
  if (rc) return rc;
  if (s.count == 0) {
    if (err && errsize) snprintf(err, errsize, "column 1: empty command");
    return -EINVAL;
  }
  size_t table = ((size_t)s.count + 1) * sizeof(char *);
  char **words = malloc(table + s.bytes);
  if (!words) return -ENOMEM;
  struct scan w = {.text = text, .words = words, .out = (char *)words + table};
  scan(&w);
  words[w.count] = NULL;
  *argv = words;
  *argc = w.count;
  return 0;
}

char **argv_copy(char *const *v, size_t extra, bool *nomem) {
  size_t n = 0, bytes = 0;
  while (v && v[n]) bytes += strlen(v[n++]) + 1;
  if (!v && !extra) return NULL;
  char **copy = malloc((n + extra + 1) * sizeof *copy + bytes);
  if (!copy) return *nomem = true, NULL;
  char *p = (char *)(copy + n + extra + 1);
  for (size_t i = 0; i < n; i++)
    copy[i] = strcpy(p, v[i]), p += strlen(v[i]) + 1;
  for (size_t i = n; i <= n + extra; i++) copy[i] = NULL;
  return copy;
}
