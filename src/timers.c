/* timers.c - a loop's deadlines: arm, disarm, pop the earliest.
 *
 * Three places hold armed entries, by how far away their deadline is.  With
 * slot(e) = e->when >> CHIME__SLOT_SHIFT (slots of about 1 ms):
 *
 *   near   slot(e) <  cursor             a run sorted by (when, arming order)
 *   wheel  cursor <= slot(e) < cursor+N  N = 4096 slots (4.3 s), each an
 *                                        array of the entries' owners (as
 *                                        4-byte slab indices) in arming
 *                                        order, kept in a ring of chunks
 *                                        (the slot counts its tail's
 *                                        elements); a bitmap
 *   far    slot(e) >= cursor + N         a binary heap
 *
 * The cursor only moves forward, up to the slot after the current one:
 * catch_up() expands every wheel slot up to then into the near run (its
 * entries in deadline order, by a stable radix sort unless arming order was
 * that already, appended after what the run holds: all earlier), and moves
 * far entries whose slot has come within reach into the wheel.  So arming
 * a deadline seconds away is an append, disarming it a store; popping is
 * an index increment; a slot is expanded once, reading its array in order
 * (its entries can be prefetched, where a linked list would chase
 * pointers); and only deadlines further than 4.3 s away pay O(log n), once,
 * in the far heap.
 *
 * FIFO among equal deadlines: wheel arrays are in arming order and the sort
 * is stable; an entry armed straight into the near run goes after every
 * entry of equal deadline (armed earlier); far entries carry a sequence
 * number, and enter the wheel the moment the cursor brings their slot
 * within reach, before anything else can be armed for it.
 *
 * An entry's `pos` says where it is (its low two bits):
 *   0                   not armed (the rest is free for its owner's use)
 *   &element | 1        in a wheel chunk, at that element (4-aligned)
 *   index << 2 | 2      in the near run, at that index
 *   index << 2 | 3      in the far heap, at that index
 * Disarming a wheel entry writes nothing in the wheel: its element stays,
 * stale, for an element counts only while its entry's pos points back at
 * it (objects are type-stable, so a stale index still names one; a pos an
 * owner uses has its low bits 0).  So a cancel does not touch the wheel's
 * memory; expanding a slot, which reads each entry anyway, passes over its
 * stale elements.  Disarming in the near run leaves a tombstone (NULL).  A
 * slot whose live count falls to 0 gives its chunks back at once, and
 * tombstones in the run are dropped as the run is consumed or compacted.
 *
 * Arming never allocates: owners reserve room for every entry that may be
 * armed at once (chime__timers_reserve), in the near run, the far heap, the
 * sort's scratch space and the chunk pool.  If the pool runs dry because
 * stale elements hold chunks, the wheel is compacted, which frees enough.
 */
#include "machine.h"

#include <string.h>

#define MASK (CHIME__WHEEL_SLOTS - 1)
#define TAG_WHEEL 1u
#define TAG_NEAR 2u
#define TAG_FAR 3u
#define BLOCK_BYTES ((size_t)128 * 1024) /* mapped, so committed only as chunks are used */
#define CHUNKS_PER_BLOCK ((BLOCK_BYTES - 16) / sizeof(struct chime__chunk))

struct chime__chunk {
  struct chime__chunk *next; /* in a slot, the next chunk (the tail's: the first); in the pool, the next free */
  uint64_t unused;
  uint32_t e[CHIME__CHUNK]; /* slab indices of the entries' owners */
};

/* A block of chunks, as mapped; blocks are used in the order they were
 * mapped, the first `fresh` chunks of t->fresh_block not yet. */
struct chime__chunk_block {
  struct chime__chunk_block *next;
  uint64_t unused;
  struct chime__chunk c[];
};

static uint64_t slot_of(chime_ns when) { return when < 0 ? 0 : (uint64_t)when >> CHIME__SLOT_SHIFT; }

static uint32_t index_of(const struct chime__timer *e) {
  return chime__obj_index(CHIME__CONTAINER(e, const struct chime__obj, timer));
}

static struct chime__timer *entry_at(const struct chime__timers *t, uint32_t index) {
  return &chime__obj_at(t->objs, index)->timer;
}

/* The entry a wheel element holds, or NULL if the element is stale. */
static struct chime__timer *element_entry(const struct chime__timers *t, const uint32_t *el) {
  struct chime__timer *e = entry_at(t, *el);
  return e->pos == ((uintptr_t)el | TAG_WHEEL) ? e : NULL;
}

void chime__timers_init(struct chime__timers *t, chime_ns now, const struct chime__slabs *objs) {
  memset(t, 0, sizeof *t);
  t->cursor = slot_of(now);
  t->objs = objs;
}

void chime__timers_fini(struct chime__timers *t) {
  while (t->blocks) {
    struct chime__chunk_block *b = t->blocks;
    t->blocks = b->next;
    chime__unmap(b, BLOCK_BYTES);
  }
  chime__free(t->near);
  chime__free(t->far);
  chime__free(t->scratch);
  memset(t, 0, sizeof *t);
}

/* Chunks enough for `n` armed entries however they are spread: after a
 * compaction a slot needs ceil(live / CHUNK) chunks, so one per entry per
 * CHUNK, one per slot in use, and one spare. */
static uint64_t chunks_for(uint64_t n) {
  return (n + CHIME__CHUNK - 1) / CHIME__CHUNK + (n < CHIME__WHEEL_SLOTS ? n : CHIME__WHEEL_SLOTS) + 1;
}

int chime__timers_reserve(struct chime__timers *t, uint64_t n) {
  uint64_t want = t->reserved + n;
  if (want > t->cap) {
    uint64_t cap = t->cap ? t->cap : 16;
    while (cap < want)
      cap *= 2;
    if (cap > UINT32_MAX) return -ENOMEM;
    struct chime__near *near = chime__realloc(t->near, cap * sizeof *near);
    if (!near) return -ENOMEM;
    t->near = near;
    struct chime__far *far = chime__realloc(t->far, cap * sizeof *far);
    if (!far) return -ENOMEM;
    t->far = far;
    struct chime__near *scratch = chime__realloc(t->scratch, cap * sizeof *scratch);
    if (!scratch) return -ENOMEM;
    t->scratch = scratch;
    t->cap = cap; /* a failure above leaves the larger arrays, and cap as it was */
  }
  while (want > t->chunks_checked && t->nchunks < chunks_for(want)) {
    struct chime__chunk_block *b = chime__map(BLOCK_BYTES);
    if (!b) return -ENOMEM;
    b->next = NULL;
    if (t->last_block)
      t->last_block->next = b;
    else
      t->blocks = b;
    if (!t->fresh_block) t->fresh_block = b;
    t->last_block = b;
    t->nchunks += CHUNKS_PER_BLOCK;
  }
  if (want > t->chunks_checked) t->chunks_checked = want; /* chunks never go away: no need to check again */
  t->reserved = want;
  return 0;
}

void chime__timers_unreserve(struct chime__timers *t, uint64_t n) { t->reserved -= n; }

/* ---- the far heap: (when, seq) ------------------------------------------------ */

static bool far_before(const struct chime__far *a, const struct chime__far *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void far_set(struct chime__timers *t, uint32_t i, struct chime__far v) {
  t->far[i] = v;
  v.e->pos = (uintptr_t)i << 2 | TAG_FAR;
}

static void far_sift_up(struct chime__timers *t, uint32_t i) {
  struct chime__far v = t->far[i];
  while (i > 0 && far_before(&v, &t->far[(i - 1) / 2])) {
    far_set(t, i, t->far[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  far_set(t, i, v);
}

static void far_sift_down(struct chime__timers *t, uint32_t i) {
  struct chime__far v = t->far[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= t->nfar) break;
    if (c + 1 < t->nfar && far_before(&t->far[c + 1], &t->far[c])) c++;
    if (!far_before(&t->far[c], &v)) break;
    far_set(t, i, t->far[c]);
    i = c;
  }
  far_set(t, i, v);
}

static void far_push(struct chime__timers *t, struct chime__timer *e) {
  t->far[t->nfar] = (struct chime__far){e->when, t->seq++, e};
  far_sift_up(t, t->nfar++);
}

static void far_remove(struct chime__timers *t, uint32_t i) {
  struct chime__far last = t->far[--t->nfar];
  if (i == t->nfar) return;
  far_set(t, i, last);
  if (i > 0 && far_before(&last, &t->far[(i - 1) / 2]))
    far_sift_up(t, i);
  else
    far_sift_down(t, i);
}

/* ---- the near run ------------------------------------------------------------- */

static void near_set(struct chime__timers *t, uint32_t i, chime_ns when, struct chime__timer *e) {
  t->near[i] = (struct chime__near){when, e};
  if (e) e->pos = (uintptr_t)i << 2 | TAG_NEAR;
}

/* Slides the run to the front of its array, dropping tombstones. */
static void near_compact(struct chime__timers *t) {
  uint32_t w = 0;
  for (uint32_t r = t->near_head; r < t->near_tail; r++)
    if (t->near[r].e) near_set(t, w++, t->near[r].when, t->near[r].e);
  t->near_head = 0;
  t->near_tail = w;
}

/* Makes room for n more elements at the end of the run.  Compacting as
 * soon as the consumed head is larger than the run keeps the part of the
 * array in use (and resident) about twice the run, at O(1) amortized. */
static void near_room(struct chime__timers *t, uint64_t n) {
  if (t->near_tail + n > t->cap || t->near_head > t->near_tail - t->near_head + 64) near_compact(t);
}

/* Drops tombstones at the head of the run. */
static void near_trim(struct chime__timers *t) {
  while (t->near_head < t->near_tail && !t->near[t->near_head].e)
    t->near_head++;
  if (t->near_head == t->near_tail) t->near_head = t->near_tail = 0;
}

/* An entry armed straight into the run: after every entry of equal or
 * earlier deadline. */
static void near_insert(struct chime__timers *t, struct chime__timer *e) {
  near_room(t, 1);
  uint32_t lo = t->near_head, hi = t->near_tail;
  if (lo == hi || t->near[hi - 1].when <= e->when) {
    lo = hi; /* at the end, the usual case */
  } else {   /* binary search for the first later deadline */
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      if (t->near[mid].when <= e->when)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (uint32_t i = t->near_tail; i > lo; i--)
      near_set(t, i, t->near[i - 1].when, t->near[i - 1].e);
  }
  near_set(t, lo, e->when, e);
  t->near_tail++;
}

/* ---- the wheel ----------------------------------------------------------------- */

static void bit_set(struct chime__timers *t, uint32_t i) {
  t->bits[i >> 6] |= 1ull << (i & 63);
  t->summary |= 1ull << (i >> 6);
}

static void bit_clear(struct chime__timers *t, uint32_t i) {
  t->bits[i >> 6] &= ~(1ull << (i & 63));
  if (!t->bits[i >> 6]) t->summary &= ~(1ull << (i >> 6));
}

/* Elements written in chunk c of slot s (live or stale): every chunk but
 * the tail is full. */
static uint32_t chunk_n(const struct chime__slot *s, const struct chime__chunk *c) {
  return c == s->tail ? s->n : CHIME__CHUNK;
}

/* Gives a slot's chunks back to the pool and empties it. */
static void slot_release(struct chime__timers *t, uint32_t i) {
  struct chime__slot *s = &t->slot[i];
  if (s->tail) {
    struct chime__chunk *head = s->tail->next;
    s->tail->next = t->pool;
    t->pool = head;
  }
  s->tail = NULL;
  s->n = s->live = 0;
  bit_clear(t, i);
}

/* Rewrites every slot without its stale elements, freeing the chunks they
 * held.  Rare: only when the pool runs dry. */
static void wheel_compact(struct chime__timers *t) {
  for (uint32_t i = 0; i < CHIME__WHEEL_SLOTS; i++) {
    struct chime__slot *s = &t->slot[i];
    if (!s->tail) continue;
    struct chime__chunk *head = s->tail->next, *w = head, *r = head;
    uint32_t wn = 0;
    for (;;) {
      for (uint32_t k = 0, n = chunk_n(s, r); k < n; k++) {
        struct chime__timer *e = element_entry(t, &r->e[k]);
        if (!e) continue;
        if (wn == CHIME__CHUNK) {
          w = w->next;
          wn = 0;
        }
        w->e[wn] = r->e[k];
        e->pos = (uintptr_t)&w->e[wn] | TAG_WHEEL;
        wn++;
      }
      if (r == s->tail) break;
      r = r->next;
    }
    if (w != s->tail) { /* the chunks after w are free */
      s->tail->next = t->pool;
      t->pool = w->next;
    }
    w->next = head;
    s->tail = w;
    s->n = wn;
  }
}

static struct chime__chunk *chunk_get(struct chime__timers *t) {
  struct chime__chunk *c = t->pool;
  if (c) {
    t->pool = c->next;
  } else if (t->fresh_block) { /* a chunk never used: the block's pages are committed with its first */
    if (!t->fresh) chime__populate(t->fresh_block, BLOCK_BYTES);
    c = &t->fresh_block->c[t->fresh++];
    if (t->fresh == CHUNKS_PER_BLOCK) {
      t->fresh_block = t->fresh_block->next;
      t->fresh = 0;
    }
  } else {
    wheel_compact(t); /* reserve guarantees this frees enough */
    c = t->pool;
    t->pool = c->next;
  }
  c->next = NULL;
  return c;
}

/* Appends an entry to slot i.  Its tail's count is the slot's, so that
 * appending reads nothing of the chunk it writes into. */
static void wheel_append(struct chime__timers *t, struct chime__timer *e, uint32_t i) {
  struct chime__slot *s = &t->slot[i];
  if (!s->tail || s->n == CHIME__CHUNK) {
    struct chime__chunk *c = chunk_get(t);
    if (s->tail && s->n < CHIME__CHUNK) { /* chunk_get compacted, and made room at the tail */
      c->next = t->pool;
      t->pool = c;
    } else { /* (compaction may have moved the tail: it is read after) */
      c->next = s->tail ? s->tail->next : c;
      if (s->tail) s->tail->next = c;
      s->tail = c;
      s->n = 0;
    }
  }
  uint32_t *el = &s->tail->e[s->n++];
  *el = index_of(e);
  e->pos = (uintptr_t)el | TAG_WHEEL;
  if (s->live++ == 0) bit_set(t, i);
  t->wheel_count++;
}

static void wheel_remove(struct chime__timers *t, struct chime__timer *e) {
  uint32_t i = (uint32_t)(slot_of(e->when) & MASK);
  t->wheel_count--;
  if (--t->slot[i].live == 0) slot_release(t, i);
}

/* The first slot at or after the cursor that holds a live entry (the wheel
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
  if (s < t->cursor)
    near_insert(t, e);
  else if (s - t->cursor < CHIME__WHEEL_SLOTS)
    wheel_append(t, e, (uint32_t)(s & MASK));
  else
    far_push(t, e);
}

/* Moves the cursor forward to `to`, bringing far entries within reach. */
static void advance(struct chime__timers *t, uint64_t to) {
  t->cursor = to;
  while (t->nfar && slot_of(t->far[0].when) < to + CHIME__WHEEL_SLOTS) {
    struct chime__timer *e = t->far[0].e;
    far_remove(t, 0);
    place(t, e);
  }
}

/* Sorts n elements by deadline, stably and in place, all within one slot
 * starting at `base`: two passes of a radix sort on the 20 bits below the
 * slot number, through `tmp` (small n: an insertion sort). */
static void sort_slot(struct chime__near *a, struct chime__near *tmp, uint32_t n, chime_ns base) {
  if (n <= 32) {
    for (uint32_t i = 1; i < n; i++) {
      struct chime__near v = a[i];
      uint32_t j = i;
      while (j > 0 && a[j - 1].when > v.when) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = v;
    }
    return;
  }
  uint32_t lo[1025] = {0}, hi[1025] = {0};
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k = a[i].when < base ? 0 : (uint32_t)(a[i].when - base);
    lo[(k & 1023) + 1]++;
    hi[(k >> 10 & 1023) + 1]++;
  }
  for (int b = 0; b < 1024; b++) {
    lo[b + 1] += lo[b];
    hi[b + 1] += hi[b];
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k = a[i].when < base ? 0 : (uint32_t)(a[i].when - base);
    tmp[lo[k & 1023]++] = a[i];
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k = tmp[i].when < base ? 0 : (uint32_t)(tmp[i].when - base);
    a[hi[k >> 10 & 1023]++] = tmp[i];
  }
}

/* Moves slot s's live entries, sorted, to the end of the near run. */
static void expand(struct chime__timers *t, uint64_t s) {
  uint32_t i = (uint32_t)(s & MASK), n = t->slot[i].live;
  if (!n) return;
  near_room(t, n);
  /* Gather (when, entry) in arming order at the end of the run; read the
   * deadlines a few entries ahead of use, so that their cache misses
   * overlap.  Arming order is often deadline order already (jobs of one
   * interval re-arm in the order they fire): then there is nothing to sort. */
  struct chime__near *out = t->near + t->near_tail;
  uint32_t k = 0;
  bool sorted = true;
  const struct chime__slot *sl = &t->slot[i];
  for (struct chime__chunk *c = sl->tail->next;; c = c->next) {
    for (uint32_t j = 0, m = chunk_n(sl, c); j < m; j++) {
      if (j + 24 < m) __builtin_prefetch(entry_at(t, c->e[j + 24]));
      struct chime__timer *e = element_entry(t, &c->e[j]);
      if (!e) continue;
      if (k && e->when < out[k - 1].when) sorted = false;
      out[k++] = (struct chime__near){e->when, e};
    }
    if (c == sl->tail) break;
  }
  if (!sorted) sort_slot(out, t->scratch, n, (chime_ns)(s << CHIME__SLOT_SHIFT));
  for (uint32_t j = 0; j < n; j++)
    out[j].e->pos = (uintptr_t)(t->near_tail + j) << 2 | TAG_NEAR;
  t->near_tail += n;
  t->wheel_count -= n;
  slot_release(t, i);
}

/* Makes the near run hold every entry whose slot is <= limit (all do
 * already if limit is behind the cursor: the usual case when entries are
 * popped one after another at one reading of the clock). */
static void catch_up(struct chime__timers *t, uint64_t limit) {
  if (limit < t->cursor) return;
  while (t->wheel_count) {
    uint64_t s = next_slot(t);
    if (s > limit) break;
    /* Expand before advancing: advancing may bring a far entry into slot
     * s + N, which shares s's array. */
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
  switch (e->pos & 3) {
  case 0: return;
  case TAG_WHEEL: wheel_remove(t, e); break;
  case TAG_NEAR:
    t->near[e->pos >> 2].e = NULL; /* its deadline stays, for the binary search */
    break;
  default: far_remove(t, (uint32_t)(e->pos >> 2)); break;
  }
  e->pos = 0;
  t->count--;
}

chime_ns chime__timers_next(struct chime__timers *t, chime_ns now) {
  if (!t->count) return CHIME_NEVER;
  catch_up(t, slot_of(now) + 1);
  near_trim(t);
  if (t->near_head < t->near_tail) return t->near[t->near_head].when;
  /* The wheel's next slot starts no later than its earliest entry: a lower
   * bound, never later than the true deadline.  Waking then expands it. */
  if (t->wheel_count) return (chime_ns)(next_slot(t) << CHIME__SLOT_SHIFT);
  return t->far[0].when;
}

struct chime__timer *chime__timers_pop(struct chime__timers *t, chime_ns now) {
  if (!t->count) return NULL;
  catch_up(t, slot_of(now) + 1);
  near_trim(t);
  if (t->near_head == t->near_tail || t->near[t->near_head].when > now) return NULL;
  struct chime__timer *e = t->near[t->near_head++].e;
  e->pos = 0;
  t->count--;
  return e;
}
