/* slab.c - per-loop slabs of fixed-size objects, and the handles that name
 * them.
 *
 * A slab is SLAB_BYTES of anonymous memory aligned to SLAB_BYTES, holding
 * objects of one power-of-two size.  Slot 0 holds the slab's header; slots
 * 1.. hold objects.  Slots are handed out first by bumping through the slab
 * (so untouched slots never become resident) and then from a free list.
 * A class may give each slot a side record, in a mapping of its own beside
 * the slab: what an object needs only later in its life (a job's
 * statistics, from its first run) stays out of the memory its creation
 * touches, and its pages are not resident until used.  Side records are
 * not cleared when a slot is reused: their owner clears them at first use.
 *
 * Memory stays type-stable for the life of the loop: a freed object keeps
 * its header, its generation moves on, and a handle (generation << 32 |
 * slab number << SLOT_BITS | slot) names the object only while the
 * generations match.  So a stale or forged handle is recognised by looking
 * it up, without touching freed memory that could have been unmapped.
 * Fresh slots start at the loop's random seed, so a handle of another loop
 * almost never matches either.  Generations have 31 bits: the handle's top
 * bit marks a borrowed handle (chime_self's), which names the object but
 * does not own it.  An owner that gives its handle up (detach, a group)
 * moves the generation on too (chime__obj_rekey), so its old copies go
 * stale at once.
 *
 * Cost: allocation and free are a few loads and stores; a lookup is a
 * bounds check, one load from the directory and one from the object.
 * Fresh slots are committed 64 KiB at a time as bumping reaches them (one
 * madvise, where a page fault for each 4 KiB cost a fifth more).
 */
#include "machine.h"

#include <string.h>
#include <sys/mman.h>

#define SLAB_BYTES ((size_t)1 << CHIME__SLAB_SHIFT)
#define MAX_SLABS (1u << (32 - CHIME__SLOT_BITS))
/* Slots are committed this many bytes at a time, as bumping reaches them:
 * 64 KiB is 1,024 jobs, so that a loop of 10,000 holds at most 6 bytes
 * per job it does not use yet. */
#define POPULATE_BYTES ((size_t)64 * 1024)

_Static_assert(sizeof(struct chime__slab) <= 64, "a slab's header fits its slot 0");

static const uint32_t class_size[CHIME__NCLASSES] = {
    [CHIME__CLASS_256] = 256,
    [CHIME__CLASS_64X] = 64,
};

static const uint32_t class_side[CHIME__NCLASSES] = {
    [CHIME__CLASS_64X] = CHIME__SIDE_BYTES,
};

/* offset / size as (offset * magic) >> 32, magic = ceil(2^32 / size):
 * exact for offsets below 2^32 / (magic * size - 2^32), far above a slab. */
static const uint64_t class_magic[CHIME__NCLASSES] = {
    [CHIME__CLASS_256] = (1ull << 32) / 256,
    [CHIME__CLASS_64X] = (1ull << 32) / 64,
};

void chime__slabs_init(struct chime__slabs *s, uint32_t seed) {
  memset(s, 0, sizeof *s);
  s->seed = (seed & CHIME__GEN_MASK) ? seed & CHIME__GEN_MASK : 1;
}

void chime__slabs_fini(struct chime__slabs *s) {
  for (uint32_t i = 0; i < s->nslabs; i++) {
    if (s->dir[i]->side) chime__unmap(s->dir[i]->side, s->dir[i]->side_bytes);
    chime__unmap(s->dir[i], SLAB_BYTES);
  }
  chime__free(s->dir);
  memset(s, 0, sizeof *s);
}

/* Maps SLAB_BYTES aligned to SLAB_BYTES: over-map, then trim. */
static void *map_aligned(void) {
  char *p = chime__map(2 * SLAB_BYTES);
  if (!p) return NULL;
  uintptr_t a = ((uintptr_t)p + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1);
  size_t head = a - (uintptr_t)p, tail = SLAB_BYTES - head;
  /* chime__map counted one mapping; the trimmed pieces are plain munmaps. */
  if (head) munmap(p, head);
  if (tail) munmap((char *)a + SLAB_BYTES, tail);
  return (void *)a;
}

static struct chime__slab *slab_new(struct chime__slabs *s, enum chime__class c) {
  if (s->nslabs == MAX_SLABS) return NULL;
  if (s->nslabs == s->cap) {
    uint32_t cap = s->cap ? s->cap * 2 : 8;
    struct chime__slab **dir = chime__realloc(s->dir, cap * sizeof *dir);
    if (!dir) return NULL;
    s->dir = dir;
    s->cap = cap;
  }
  size_t slots = SLAB_BYTES / class_size[c], page = 4096;
  size_t side_bytes = (slots * class_side[c] + page - 1) & ~(page - 1);
  char *side = side_bytes ? chime__map(side_bytes) : NULL;
  if (side_bytes && !side) return NULL;
  struct chime__slab *slab = map_aligned();
  if (!slab) {
    if (side) chime__unmap(side, side_bytes);
    return NULL;
  }
  /* Small pages, committed as they are touched.  Not MADV_HUGEPAGE: it
   * saved page faults on a fresh machine (churn of a million jobs: 25
   * ns/op against 40), but where memory was fragmented each huge page
   * waited for the kernel to compact it (130-290 ns/op). */
  chime__populate(slab, POPULATE_BYTES);
  slab->number = s->nslabs;
  slab->cls = (uint8_t)c;
  slab->used = 1;
  slab->slots = (uint32_t)slots;
  slab->size = class_size[c];
  slab->magic = class_magic[c];
  slab->side = side;
  slab->side_bytes = side_bytes;
  slab->side_size = class_side[c];
  s->dir[s->nslabs++] = slab;
  return slab;
}

struct chime__obj *chime__obj_alloc(struct chime__slabs *s, enum chime__class c) {
  struct chime__obj *o = s->free[c];
  size_t size = class_size[c];
  if (o) {
    if (CHIME__FAULT()) return NULL; /* stands for the allocation it replaces */
    s->free[c] = *(struct chime__obj **)(o + 1);
    uint32_t gen = o->gen;
    memset(o, 0, size);
    o->gen = gen;
    return o;
  }
  struct chime__slab *slab = s->bump[c];
  if (!slab || slab->used == slab->slots) {
    slab = slab_new(s, c);
    if (!slab) return NULL;
    s->bump[c] = slab;
  } else if (CHIME__FAULT()) {
    return NULL;
  }
  size_t off = (size_t)slab->used++ * class_size[c];
  o = (struct chime__obj *)((char *)slab + off);
  if (!(off & (POPULATE_BYTES - 1))) chime__populate(o, POPULATE_BYTES);
  /* fresh from mmap: already zero */
  o->gen = s->seed;
  return o;
}

void chime__obj_free(struct chime__slabs *s, struct chime__obj *o) {
  struct chime__slab *slab = chime__slab_of(o);
  o->kind = CHIME__FREE;
  o->gen = chime__next_gen(o->gen);
  *(struct chime__obj **)(o + 1) = s->free[slab->cls];
  s->free[slab->cls] = o;
}

void chime__slabs_each(struct chime__slabs *s, enum chime__class c, void (*fn)(struct chime__obj *o, void *ctx),
                       void *ctx) {
  for (uint32_t i = 0; i < s->nslabs; i++) {
    struct chime__slab *slab = s->dir[i];
    if (slab->cls != c) continue;
    for (uint32_t k = 1; k < slab->used; k++) {
      struct chime__obj *o = (struct chime__obj *)((char *)slab + (size_t)k * class_size[c]);
      if (o->kind != CHIME__FREE) fn(o, ctx);
    }
  }
}
