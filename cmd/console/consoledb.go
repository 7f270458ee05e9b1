package main

import (
	"context"
	"database/sql"
	"path/filepath"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/sqldb"
)

// openConsoleDB opens the data dir's console.db with the schema of every
// store that keeps its tables there: access (users, sessions, tokens,
// roles, bindings, login throttle, audit log), collector's lag windows and
// alerting (rules, alert state and history, silences, notifier state).
// The console and the offline commands both open it here, so that the list
// of what lives in console.db is written once. dlq.db and tsdb.db belong
// to one store each, which opens its own file.
func openConsoleDB(ctx context.Context, dataDir string) (*sql.DB, error) {
	return sqldb.Open(ctx, filepath.Join(dataDir, "console.db"), access.Schema(), collector.WindowSchema(), alerting.Schema())
}
