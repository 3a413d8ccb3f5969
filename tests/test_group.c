/* test_group.c - task groups. */
#include "test.h"

static struct trace tr;

static int nap(void *arg) {
  int secs = (int)(intptr_t)arg;
  int rc = chime_sleep(CHIME_SEC(secs < 0 ? -secs : secs));
  trace_add(&tr, "%d:%d@%ld", secs, rc, now_s());
  if (rc) return rc;
  return secs < 0 ? -EIO : 0; /* a negative argument: fail after the nap */
}

static int join_all_main(void *unused) {
  (void)unused;
  chime_group *g;
  assert_int_equal(chime_group_new(NULL, &g), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)3), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)-1), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)2), 0);
  assert_int_equal(chime_group_size(g), 3);
  int err = 0;
  assert_int_equal(chime_group_join(g, CHIME_NEVER, &err), 0);
  assert_int_equal(err, -EIO);
  assert_int_equal(chime_now(), CHIME_SEC(3));
  assert_int_equal(chime_group_size(g), 0);
  /* the error was reported: the next join starts afresh */
  assert_int_equal(chime_group_join(g, CHIME_NEVER, &err), 0);
  assert_int_equal(err, 0);
  return chime_group_free(g);
}

static void join_waits_for_every_member_and_reports_the_first_error(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(join_all_main, NULL), 0);
  assert_string_equal(tr.text, "-1:0@1 2:0@2 3:0@3");
}

static int fail_fast_main(void *unused) {
  (void)unused;
  chime_group *g;
  chime_group_opts o = {.cancel_on_error = true};
  assert_int_equal(chime_group_new(&o, &g), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)5), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)-2), 0);
  int err = 0;
  assert_int_equal(chime_group_join(g, CHIME_NEVER, &err), 0);
  assert_int_equal(err, -EIO);
  assert_int_equal(chime_now(), CHIME_SEC(2));
  /* a cancelled group cancels newcomers too */
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)1), 0);
  assert_int_equal(chime_group_join(g, CHIME_NEVER, &err), 0);
  assert_int_equal(err, -ECANCELED);
  return chime_group_free(g);
}

static void cancel_on_error_cancels_the_others(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(fail_fast_main, NULL), 0);
  assert_string_equal(tr.text, "-2:0@2 5:-125@2 1:-125@2");
}

static int cancel_main(void *unused) {
  (void)unused;
  chime_group *g;
  assert_int_equal(chime_group_new(NULL, &g), 0);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)(i * 10)), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  assert_int_equal(chime_group_free(g), -EBUSY); /* members alive */
  assert_int_equal(chime_group_cancel(g), 0);
  assert_int_equal(chime_group_join(g, CHIME_NEVER, NULL), 0);
  assert_int_equal(chime_now(), CHIME_SEC(1));
  return chime_group_free(g);
}

static void cancel_reaches_every_member(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(cancel_main, NULL), 0);
  assert_string_equal(tr.text, "10:-125@1 20:-125@1 30:-125@1");
}

static int returns_seven(void *unused) {
  (void)unused;
  return -7;
}

static int add_main(void *unused) {
  (void)unused;
  chime_group *g;
  chime_task a, b;
  assert_int_equal(chime_group_new(NULL, &g), 0);
  assert_int_equal(chime_spawn(nap, (void *)(intptr_t)2, &a), 0);
  assert_int_equal(chime_spawn(returns_seven, NULL, &b), 0);
  assert_int_equal(chime_yield(), 0); /* b has finished */
  assert_int_equal(chime_group_add(g, a), 0);
  assert_int_equal(chime_group_add(g, b), 0); /* finished: counted at once */
  assert_int_equal(chime_group_size(g), 1);
  /* the handles now belong to the group */
  assert_int_equal(chime_join(a, NULL), -EINVAL);
  assert_int_equal(chime_group_add(g, a), -EINVAL);
  int err;
  assert_int_equal(chime_group_join(g, CHIME_NEVER, &err), 0);
  assert_int_equal(err, -7);
  assert_int_equal(chime_now(), CHIME_SEC(2));
  return chime_group_free(g);
}

static void add_moves_a_handle_into_the_group(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(add_main, NULL), 0);
}

static int deadline_main(void *unused) {
  (void)unused;
  chime_group *g;
  assert_int_equal(chime_group_new(NULL, &g), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)10), 0);
  assert_int_equal(chime_group_join(g, CHIME_SEC(4), NULL), -ETIMEDOUT);
  assert_int_equal(chime_now(), CHIME_SEC(4));
  assert_int_equal(chime_group_join(g, -1, NULL), -EINVAL);
  /* a cancelled caller does not wait for an uncancelled group ... */
  chime_cancel(chime_self());
  assert_int_equal(chime_group_join(g, CHIME_NEVER, NULL), -ECANCELED);
  /* ... but waits for a cancelled one's cleanup */
  assert_int_equal(chime_group_cancel(g), 0);
  assert_int_equal(chime_group_join(g, CHIME_NEVER, NULL), 0);
  return chime_group_free(g);
}

static void join_has_a_deadline_and_obeys_cancellation(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(deadline_main, NULL), 0);
}

static chime_group *shared;
static int other_joiner(void *unused) {
  (void)unused;
  return chime_group_join(shared, CHIME_NEVER, NULL);
}

static int bad_args_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_group_new(NULL, NULL), -EINVAL);
  assert_int_equal(chime_group_spawn(NULL, nap, NULL), -EINVAL);
  assert_int_equal(chime_group_join(NULL, CHIME_NEVER, NULL), -EINVAL);
  assert_int_equal(chime_group_cancel(NULL), -EINVAL);
  assert_int_equal(chime_group_free(NULL), -EINVAL);
  assert_int_equal(chime_group_add(NULL, chime_self()), -EINVAL);
  assert_int_equal(chime_group_size(NULL), 0);
  assert_int_equal(chime_group_new(NULL, &shared), 0);
  assert_int_equal(chime_group_spawn(shared, NULL, NULL), -EINVAL);
  chime_task zero = {0};
  assert_int_equal(chime_group_add(shared, zero), -EINVAL);
  /* one joiner at a time */
  assert_int_equal(chime_group_spawn(shared, nap, (void *)(intptr_t)1), 0);
  chime_task t;
  assert_int_equal(chime_spawn(other_joiner, NULL, &t), 0);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(chime_group_join(shared, CHIME_NEVER, NULL), -EINVAL);
  assert_int_equal(chime_join(t, NULL), 0);
  return chime_group_free(shared);
}

static void bad_arguments_are_refused(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(bad_args_main, NULL), 0);
}

static void groups_need_a_running_loop(void **state) {
  (void)state;
  chime_group *g = NULL;
  assert_int_equal(chime_group_new(NULL, &g), -EPERM);
  assert_null(g);
}

static int leave_group_behind(void *unused) {
  (void)unused;
  chime_group *g;
  assert_int_equal(chime_group_new(NULL, &g), 0);
  assert_int_equal(chime_group_spawn(g, nap, (void *)(intptr_t)100), 0);
  return 0; /* the shutdown cancels the member; the loop frees the group */
}

static void the_loop_frees_groups_left_behind(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(leave_group_behind, NULL), 0);
  assert_string_equal(tr.text, "100:-125@0");
}

/* A member cannot give itself to a group, nor wait for its own group. */
static chime_group *own;
static int member(void *unused) {
  (void)unused;
  chime_group *other;
  assert_int_equal(chime_group_new(NULL, &other), 0);
  assert_int_equal(chime_group_add(other, chime_self()), -EINVAL); /* a borrowed handle */
  assert_int_equal(chime_group_free(other), 0);
  return chime_group_join(own, CHIME_NEVER, NULL) == -EDEADLK ? 0 : -1;
}

static int self_main(void *unused) {
  (void)unused;
  int first = 1;
  assert_int_equal(chime_group_new(NULL, &own), 0);
  assert_int_equal(chime_group_spawn(own, member, NULL), 0);
  chime_task t;
  assert_int_equal(chime_spawn(member, NULL, &t), 0);
  assert_int_equal(chime_group_add(own, t), 0);
  assert_int_equal(chime_cancel(t), -EINVAL); /* the handle went to the group */
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0); /* the members join their group first: no deadlock */
  assert_int_equal(chime_group_join(own, CHIME_NEVER, &first), 0);
  assert_int_equal(first, 0);
  return chime_group_free(own);
}

static void a_member_cannot_add_or_join_itself(void **state) {
  (void)state;
  assert_int_equal(run_virtual(self_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(join_waits_for_every_member_and_reports_the_first_error),
          cmocka_unit_test(cancel_on_error_cancels_the_others), cmocka_unit_test(cancel_reaches_every_member),
          cmocka_unit_test(add_moves_a_handle_into_the_group),
          cmocka_unit_test(join_has_a_deadline_and_obeys_cancellation), cmocka_unit_test(bad_arguments_are_refused),
          cmocka_unit_test(groups_need_a_running_loop), cmocka_unit_test(the_loop_frees_groups_left_behind),
          cmocka_unit_test(a_member_cannot_add_or_join_itself))
