#include <maxminddb.h>
#include <sys/syscall.h>
#include <unistd.h>

/* An anonymous memory file, close-on-exec (memfd_create(2); MFD_CLOEXEC is 1): where Geo keeps its
   private copy of a database, so that the file on disk can change under it. fd, or -1 (errno). */
static inline int lodestar_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 1U);
}
