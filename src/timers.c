/* timers.c - a loop's deadlines: arm, disarm, pop the earliest.
 *
 * Three places hold armed entries, by how far away their deadline is.  With
 * slot(e) = e->when >> CHIME__SLOT_SHIFT (slots of about 1 ms):
 *
 *   near   slot(e) <  cursor             binary heap, exact (when, seq) order
 *   wheel  cursor <= slot(e) < cursor+N  N = 4096 slots (4.3 s): unordered
 *                                        lists, one per slot, and a bitmap
 *   far    slot(e) >= cursor + N         binary heap
 *
 * The cursor only moves forward, and only up to the slot after the current
 * one: catch_up() expands every wheel slot up to then into the near heap,
 * and moves far entries whose slot has come within reach into the wheel.
 * So arming a deadline a few seconds away, and disarming it, are O(1) list
 * operations; an entry reaches the near heap once, shortly before it is due,
 * when the heap holds about a millisecond's worth of entries; and only
 * deadlines further than 4.3 s away pay O(log n) in the far heap, once.
 *
 * FIFO among equal deadlines: heap entries carry a sequence number.  Wheel
 * lists are kept newest first; expanding a slot numbers its entries oldest
 * first.  Entries of one slot are all either in its list or armed after it
 * was expanded (with higher numbers), and far entries enter the wheel the
 * moment the cursor brings their slot within reach, before anything else
 * can be armed for that slot; so numbering by these rules is arming order.
 *
 * Encoding of an entry's `link` (its low two bits say where it is):
 *   0                  not armed
 *   next | 1           in a wheel list; `aux` points at the word that points
 *                      to it (the slot head or the previous entry's link)
 *   index << 2 | 2     near heap, at v[index]; `aux` is its sequence number
 *   index << 2 | 3     far heap, likewise
 * Slot heads hold first | 1 (or 0 or 1 when empty), like links.
 *
 * Arming never allocates: owners reserve room in both heap arrays for every
 * entry that may be armed at once (chime__timers_reserve).
 */
#include "internal.h"

#include <string.h>

#define MASK (CHIME__WHEEL_SLOTS - 1)
#define TAG_WHEEL 1u
#define TAG_NEAR 2u
#define TAG_FAR 3u

static uint64_t slot_of(chime_ns when) { return when < 0 ? 0 : (uint64_t)when >> CHIME__SLOT_SHIFT; }
static struct chime__timer *untag(uintptr_t link) { return (struct chime__timer *)(link & ~(uintptr_t)3); }

void chime__timers_init(struct chime__timers *t) { memset(t, 0, sizeof *t); }

void chime__timers_fini(struct chime__timers *t) {
  chime__free(t->near.v);
  chime__free(t->far.v);
  memset(t, 0, sizeof *t);
}

int chime__timers_reserve(struct chime__timers *t, uint64_t n) {
  uint64_t want = t->reserved + n;
  if (want > t->cap) {
    uint64_t cap = t->cap ? t->cap : 16;
    while (cap < want)
      cap *= 2;
    if (cap > UINT32_MAX) return -ENOMEM;
    struct chime__timer **near = chime__realloc(t->near.v, cap * sizeof *near);
    if (!near) return -ENOMEM;
    t->near.v = near;
    struct chime__timer **far = chime__realloc(t->far.v, cap * sizeof *far);
    if (!far) return -ENOMEM; /* near keeps its larger array; cap stays */
    t->far.v = far;
    t->cap = cap;
  }
  t->reserved = want;
  return 0;
}

void chime__timers_unreserve(struct chime__timers *t, uint64_t n) { t->reserved -= n; }

/* ---- heaps ------------------------------------------------------------------ */

static bool before(const struct chime__timer *a, const struct chime__timer *b) {
  return a->when < b->when || (a->when == b->when && a->aux < b->aux);
}

static void heap_set(struct chime__heap *h, uint32_t i, struct chime__timer *e, uintptr_t tag) {
  h->v[i] = e;
  e->link = (uintptr_t)i << 2 | tag;
}

static void sift_up(struct chime__heap *h, uint32_t i, uintptr_t tag) {
  struct chime__timer *e = h->v[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (!before(e, h->v[p])) break;
    heap_set(h, i, h->v[p], tag);
    i = p;
  }
  heap_set(h, i, e, tag);
}

static void sift_down(struct chime__heap *h, uint32_t i, uintptr_t tag) {
  struct chime__timer *e = h->v[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && before(h->v[c + 1], h->v[c])) c++;
    if (!before(h->v[c], e)) break;
    heap_set(h, i, h->v[c], tag);
    i = c;
  }
  heap_set(h, i, e, tag);
}

static void heap_push(struct chime__heap *h, struct chime__timer *e, uintptr_t tag) {
  h->v[h->n++] = e;
  sift_up(h, h->n - 1, tag);
}

static void heap_remove(struct chime__heap *h, uint32_t i, uintptr_t tag) {
  struct chime__timer *last = h->v[--h->n];
  if (i == h->n) return;
  heap_set(h, i, last, tag);
  if (i > 0 && before(last, h->v[(i - 1) / 2]))
    sift_up(h, i, tag);
  else
    sift_down(h, i, tag);
}

/* ---- wheel ----------------------------------------------------------------- */

static void bit_set(struct chime__timers *t, uint32_t i) {
  t->bits[i >> 6] |= 1ull << (i & 63);
  t->summary |= 1ull << (i >> 6);
}

static void bit_clear(struct chime__timers *t, uint32_t i) {
  t->bits[i >> 6] &= ~(1ull << (i & 63));
  if (!t->bits[i >> 6]) t->summary &= ~(1ull << (i >> 6));
}

static void wheel_push(struct chime__timers *t, struct chime__timer *e, uint32_t i) {
  uintptr_t *head = &t->slot[i];
  struct chime__timer *first = untag(*head);
  e->link = (uintptr_t)first | TAG_WHEEL;
  e->aux = (uintptr_t)head;
  if (first) first->aux = (uintptr_t)&e->link;
  *head = (uintptr_t)e | TAG_WHEEL;
  bit_set(t, i);
  t->wheel_count++;
}

static void wheel_unlink(struct chime__timers *t, struct chime__timer *e) {
  uintptr_t *pp = (uintptr_t *)(uintptr_t)e->aux;
  struct chime__timer *next = untag(e->link);
  *pp = e->link;
  if (next) next->aux = (uintptr_t)pp;
  uint32_t i = (uint32_t)(slot_of(e->when) & MASK);
  if (!untag(t->slot[i])) bit_clear(t, i);
  t->wheel_count--;
}

/* The first slot at or after the cursor whose list is not empty (the wheel
 * must not be empty). */
static uint64_t next_slot(const struct chime__timers *t) {
  uint32_t c = (uint32_t)(t->cursor & MASK), w = c >> 6, idx;
  uint64_t m = t->bits[w] & (~0ull << (c & 63));
  if (m) {
    idx = w * 64 + (uint32_t)__builtin_ctzll(m);
  } else {
    uint64_t later = w == 63 ? 0 : t->summary & (~0ull << (w + 1));
    uint32_t w2 = (uint32_t)__builtin_ctzll(later ? later : t->summary);
    idx = w2 * 64 + (uint32_t)__builtin_ctzll(t->bits[w2]);
  }
  return t->cursor + ((idx - c) & MASK);
}

/* Puts an armed entry where its deadline belongs. */
static void place(struct chime__timers *t, struct chime__timer *e) {
  uint64_t s = slot_of(e->when);
  if (s < t->cursor) {
    e->aux = t->seq++;
    heap_push(&t->near, e, TAG_NEAR);
  } else if (s - t->cursor < CHIME__WHEEL_SLOTS) {
    wheel_push(t, e, (uint32_t)(s & MASK));
  } else {
    e->aux = t->seq++;
    heap_push(&t->far, e, TAG_FAR);
  }
}

/* Moves the cursor forward to `to`, bringing far entries within reach. */
static void advance(struct chime__timers *t, uint64_t to) {
  t->cursor = to;
  while (t->far.n && slot_of(t->far.v[0]->when) < to + CHIME__WHEEL_SLOTS) {
    struct chime__timer *e = t->far.v[0];
    heap_remove(&t->far, 0, TAG_FAR);
    place(t, e);
  }
}

/* Moves slot s's list into the near heap, oldest first. */
static void expand(struct chime__timers *t, uint64_t s) {
  uint32_t i = (uint32_t)(s & MASK);
  uint64_t n = 0;
  for (struct chime__timer *e = untag(t->slot[i]); e; e = untag(e->link))
    n++;
  uint64_t seq = t->seq + n;
  struct chime__timer *e = untag(t->slot[i]);
  while (e) {
    struct chime__timer *next = untag(e->link);
    e->aux = --seq;
    heap_push(&t->near, e, TAG_NEAR);
    e = next;
  }
  t->seq += n;
  t->slot[i] = 0;
  bit_clear(t, i);
  t->wheel_count -= n;
}

/* Makes the near heap hold every entry whose slot is <= limit. */
static void catch_up(struct chime__timers *t, uint64_t limit) {
  while (t->wheel_count) {
    uint64_t s = next_slot(t);
    if (s > limit) break;
    /* Expand before advancing: advancing may bring a far entry into slot
     * s + N, which shares s's list. */
    expand(t, s);
    advance(t, s + 1);
  }
  if (t->cursor <= limit) advance(t, limit + 1);
}

/* ---- interface ------------------------------------------------------------- */

void chime__timers_add(struct chime__timers *t, struct chime__timer *e, chime_ns when) {
  e->when = when;
  t->count++;
  place(t, e);
}

void chime__timers_del(struct chime__timers *t, struct chime__timer *e) {
  switch (e->link & 3) {
  case 0: return;
  case TAG_WHEEL: wheel_unlink(t, e); break;
  case TAG_NEAR: heap_remove(&t->near, (uint32_t)(e->link >> 2), TAG_NEAR); break;
  default: heap_remove(&t->far, (uint32_t)(e->link >> 2), TAG_FAR); break;
  }
  e->link = 0;
  t->count--;
}

chime_ns chime__timers_next(struct chime__timers *t, chime_ns now) {
  if (!t->count) return CHIME_NEVER;
  catch_up(t, slot_of(now) + 1);
  if (t->near.n) return t->near.v[0]->when;
  /* The wheel's next slot starts no later than its earliest entry: a lower
   * bound, never later than the true deadline.  Waking then expands it. */
  if (t->wheel_count) return (chime_ns)(next_slot(t) << CHIME__SLOT_SHIFT);
  return t->far.v[0]->when;
}

struct chime__timer *chime__timers_pop(struct chime__timers *t, chime_ns now) {
  if (!t->count) return NULL;
  catch_up(t, slot_of(now) + 1);
  if (!t->near.n || t->near.v[0]->when > now) return NULL;
  struct chime__timer *e = t->near.v[0];
  heap_remove(&t->near, 0, TAG_NEAR);
  e->link = 0;
  t->count--;
  return e;
}
