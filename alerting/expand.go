package alerting

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// This file expands annotation templates as Prometheus 2.42 does
// (template/template.go and rules/alerting.go): text/template with
// missingkey=zero, the variables $labels and $value (and $externalLabels
// and $externalURL, empty here, so that rules written for Prometheus
// parse), and its humanize family of functions.

// templateDefs is the prefix Prometheus puts before every alert template.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// templateData is what an alert template sees.
type templateData struct {
	Labels         map[string]string
	ExternalLabels map[string]string
	ExternalURL    string
	Value          float64
}

// templateFuncs are Prometheus's template functions that need no query
// engine. Read only.
var templateFuncs = template.FuncMap{
	"humanize":           humanize,
	"humanize1024":       humanize1024,
	"humanizeDuration":   humanizeDuration,
	"humanizePercentage": humanizePercentage,
	"humanizeTimestamp":  humanizeTimestamp,
	"toUpper":            strings.ToUpper,
	"toLower":            strings.ToLower,
	"title":              strings.Title, //nolint:staticcheck // Prometheus's title is strings.Title
	"match":              regexp.MatchString,
	"reReplaceAll": func(pattern, repl, text string) (string, error) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return "", err
		}
		return re.ReplaceAllString(text, repl), nil
	},
}

// Expand expands one annotation template with Prometheus's syntax:
// {{ $labels.group }} ("" for a missing label), {{ $value }},
// {{ $value | humanize }}, humanizeDuration, humanizePercentage, printf….
// A template that fails to parse or execute expands to Prometheus's error
// text, "<error expanding template: …>"; Expand never panics.
func Expand(tmpl string, labels map[string]string, value float64) string {
	if !strings.Contains(tmpl, "{{") {
		return tmpl
	}
	t, err := parseTemplate(tmpl)
	if err != nil {
		return expandError(err)
	}
	return execTemplate(t, labels, value)
}

// CheckTemplate reports a template's parse error, for validation.
func CheckTemplate(tmpl string) error {
	_, err := parseTemplate(tmpl)
	return err
}

func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("__alert").Funcs(templateFuncs).Option("missingkey=zero").Parse(templateDefs + text)
	if err != nil {
		return nil, fmt.Errorf("error parsing template __alert: %w", err)
	}
	return t, nil
}

func execTemplate(t *template.Template, labels map[string]string, value float64) (out string) {
	// A template must never take the evaluator down, whatever it calls:
	// Prometheus recovers the same way.
	defer func() {
		if r := recover(); r != nil {
			out = expandError(fmt.Errorf("panic expanding template __alert: %v", r))
		}
	}()
	if labels == nil {
		labels = map[string]string{}
	}
	var b bytes.Buffer
	if err := t.Execute(&b, templateData{Labels: labels, Value: value}); err != nil {
		return expandError(fmt.Errorf("error executing template __alert: %w", err))
	}
	return b.String()
}

func expandError(err error) string { return fmt.Sprintf("<error expanding template: %s>", err) }

func toFloat(i any) (float64, error) {
	switch v := i.(type) {
	case float64:
		return v, nil
	case string:
		return strconv.ParseFloat(v, 64)
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case uint:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case time.Duration:
		return v.Seconds(), nil
	}
	return 0, fmt.Errorf("can't convert %T to float", i)
}

// humanize writes a number with 4 significant digits and an SI prefix:
// 1234 → "1.234k", 0.001 → "1m".
func humanize(i any) (string, error) {
	v, err := toFloat(i)
	if err != nil {
		return "", err
	}
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	if math.Abs(v) >= 1 {
		prefix := ""
		for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
			if math.Abs(v) < 1000 {
				break
			}
			prefix = p
			v /= 1000
		}
		return fmt.Sprintf("%.4g%s", v, prefix), nil
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix = p
		v *= 1000
	}
	return fmt.Sprintf("%.4g%s", v, prefix), nil
}

// humanize1024 is humanize with binary prefixes: 2048 → "2ki".
func humanize1024(i any) (string, error) {
	v, err := toFloat(i)
	if err != nil {
		return "", err
	}
	if math.Abs(v) <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	prefix := ""
	for _, p := range []string{"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"} {
		if math.Abs(v) < 1024 {
			break
		}
		prefix = p
		v /= 1024
	}
	return fmt.Sprintf("%.4g%s", v, prefix), nil
}

// humanizeDuration writes seconds as a duration: 90 → "1m 30s",
// 0.25 → "250ms".
func humanizeDuration(i any) (string, error) {
	v, err := toFloat(i)
	if err != nil {
		return "", err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	if v == 0 {
		return fmt.Sprintf("%.4gs", v), nil
	}
	if math.Abs(v) >= 1 {
		sign := ""
		if v < 0 {
			sign = "-"
			v = -v
		}
		duration := int64(v)
		seconds := duration % 60
		minutes := (duration / 60) % 60
		hours := (duration / 60 / 60) % 24
		days := duration / 60 / 60 / 24
		switch {
		case days != 0:
			return fmt.Sprintf("%s%dd %dh %dm %ds", sign, days, hours, minutes, seconds), nil
		case hours != 0:
			return fmt.Sprintf("%s%dh %dm %ds", sign, hours, minutes, seconds), nil
		case minutes != 0:
			return fmt.Sprintf("%s%dm %ds", sign, minutes, seconds), nil
		}
		return fmt.Sprintf("%s%.4gs", sign, v), nil
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix = p
		v *= 1000
	}
	return fmt.Sprintf("%.4g%ss", v, prefix), nil
}

// humanizePercentage writes a ratio as a percentage: 0.1234 → "12.34%".
func humanizePercentage(i any) (string, error) {
	v, err := toFloat(i)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.4g%%", v*100), nil
}

// humanizeTimestamp writes Unix seconds as a UTC time.
func humanizeTimestamp(i any) (string, error) {
	v, err := toFloat(i)
	if err != nil {
		return "", err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	ns := v * 1e9
	if ns > math.MaxInt64 || ns < math.MinInt64 {
		return "", fmt.Errorf("%v cannot be represented as a nanoseconds timestamp since it overflows int64", v)
	}
	// Prometheus goes through model.Time: millisecond precision.
	return fmt.Sprint(time.UnixMilli(int64(ns) / 1e6).UTC()), nil
}
