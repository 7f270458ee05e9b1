//go:build linux && cgo

package sqldb

/*
#include <malloc.h>

static int trim(void) {
	return malloc_trim(0);
}

static int limit_arenas(int n) {
#ifdef M_ARENA_MAX
	return mallopt(M_ARENA_MAX, n);
#else
	return 0;
#endif
}
*/
import "C"

// LimitMallocArenas caps the C allocator's arenas at n for the rest of the
// process (glibc's mallopt(M_ARENA_MAX), as MALLOC_ARENA_MAX does at
// start), and reports whether the allocator took it. SQLite allocates from
// whichever thread runs it, and glibc gives each thread an arena of its
// own, up to eight per core: pages freed in one are not reused by
// another, so a long-running process's C memory creeps up far past what
// SQLite holds. A process setting: main calls it, before the stores open.
func LimitMallocArenas(n int) bool {
	return C.limit_arenas(C.int(n)) == 1
}

// TrimMalloc gives the pages the C allocator holds free back to the system
// (glibc's malloc_trim(0), which since 2.8 also releases free pages inside
// its heaps, not only at their top), and reports whether it released any.
// SQLite frees page cache and statement memory in pieces of every size,
// so a heap that a burst grew stays mapped, mostly free, until trimmed. It
// walks every arena holding its lock: tens of milliseconds, for a
// periodic call.
func TrimMalloc() bool {
	return C.trim() == 1
}
