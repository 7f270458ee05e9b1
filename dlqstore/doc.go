// Package dlqstore will persist dead letters, failure groups, job ledgers
// and the Kafka offsets stored with them (SQLite, FTS5). It is empty until
// the dead-letter index issue lands; the layout is fixed now so that the
// packages that depend on it have a home.
package dlqstore
