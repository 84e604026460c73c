#include <maxminddb.h>
#include <sys/syscall.h>
#include <unistd.h>

/* An anonymous memory file, close-on-exec (memfd_create(2); MFD_CLOEXEC is 1): where Geo keeps its
   private copy of a database, so that the file on disk can change under it. fd, or -1 (errno). */
static inline int lodestar_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 1U);
}

#include <malloc.h>

/* Gives the free pages of every malloc heap back to the system (malloc_trim(3)). */
static inline void lodestar_release_memory(void) { (void)malloc_trim(0); }

/* Blocks of at least `bytes` get a mapping of their own, returned to the system when freed; a fixed
   threshold also stops glibc from raising it after a large block is freed (mallopt(3)). */
static inline void lodestar_mmap_threshold(int bytes) { (void)mallopt(M_MMAP_THRESHOLD, bytes); }
