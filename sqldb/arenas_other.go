//go:build !linux || !cgo

package sqldb

// LimitMallocArenas does nothing where the C allocator is not glibc's.
func LimitMallocArenas(int) bool { return false }

// TrimMalloc does nothing where the C allocator is not glibc's.
func TrimMalloc() bool { return false }
