/* error.c - the library's version, and names for its errors. */
#include "base.h"

const char *chime_version(void) { return CHIME_VERSION_STRING; }

const char *chime_strerror(int err) {
  if (err == INT32_MIN) return "unknown error"; /* -err would overflow */
  if (err < 0) err = -err;
  switch (err) {
  case 0: return "success";
  case EINVAL: return "invalid argument";
  case ENOMEM: return "out of memory";
  case EPERM: return "operation not permitted here (no loop running on this thread, or not in a task)";
  case EBUSY: return "busy (a loop is already running on this thread, or the object is in use)";
  case ECANCELED: return "cancelled";
  case ETIMEDOUT: return "timed out";
  case EDEADLK: return "deadlock (a task joining itself)";
  case ERANGE: return "value out of range";
  case EMFILE: return "too many open files";
  case ENFILE: return "too many open files in the system";
  case EAGAIN: return "resource temporarily unavailable";
  case EBADF: return "bad file descriptor";
  case ENOENT: return "no such file or directory";
  case ESRCH: return "no such process, or a job that has stopped";
  case EACCES: return "permission denied";
  case ENOSYS: return "not supported by this system";
  case EINTR: return "interrupted";
  default: return "unknown error";
  }
}
