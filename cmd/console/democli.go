package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
)

const demoUsage = `usage: console demo [flags]            run the console with an embedded Kafka and demo services
       console demo fix CODE [flags]   deploy the fix for an error code in the running demo
       console demo unfix CODE [flags] take the fix back
       console demo fixes [flags]      list the codes a fix exists for, and which are deployed

Once the fix for a code is deployed, the demo's services stop failing with it, so a redrive of
its dead letters succeeds. fix, unfix and fixes call the running console's API (admin only):
--url (CONSOLE_URL, default http://127.0.0.1:8080) with a token from --token or CONSOLE_TOKEN
(console token create --user admin).`

type demoFixes struct {
	Fixes []struct {
		Code  string `json:"code"`
		Fixed bool   `json:"fixed"`
	} `json:"fixes"`
}

// runDemoControl is `console demo fix|unfix|fixes`.
func runDemoControl(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cmd := args[0]
	f := newDLQFlags("demo "+cmd, getenv)
	code, rest := "", args[1:]
	switch cmd {
	case "fix", "unfix":
		code, rest = splitName(rest)
		if code == "" {
			return usageError{fmt.Sprintf("usage: console demo %s CODE [--url URL] [--token TOKEN]", cmd)}
		}
	case "fixes":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, demoUsage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown demo command %q\n%s", cmd, demoUsage)}
	}
	if err := f.fs.Parse(rest); err != nil {
		return usageError{"demo " + cmd + ": " + err.Error()}
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	var out demoFixes
	switch cmd {
	case "fix":
		err = c.do(ctx, http.MethodPost, "/api/v1/demo/fixes", map[string]string{"code": code}, &out)
	case "unfix":
		if err = c.do(ctx, http.MethodDelete, "/api/v1/demo/fixes/"+url.PathEscape(code), nil, nil); err == nil {
			err = c.do(ctx, http.MethodGet, "/api/v1/demo/fixes", nil, &out)
		}
	default:
		err = c.do(ctx, http.MethodGet, "/api/v1/demo/fixes", nil, &out)
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "fix":
		fmt.Fprintf(stdout, "fix deployed for %s: redrive its dead letters to see them succeed\n", code)
	case "unfix":
		fmt.Fprintf(stdout, "fix taken back for %s\n", code)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tFIX")
	for _, x := range out.Fixes {
		state := "not deployed"
		if x.Fixed {
			state = "deployed"
		}
		fmt.Fprintf(tw, "%s\t%s\n", x.Code, state)
	}
	return tw.Flush()
}
