package grafana

//go:generate go run -tags sqlite_fts5 ./cmd/gendashboards -out .
