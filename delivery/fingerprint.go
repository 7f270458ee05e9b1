package delivery

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"regexp"
	"strings"
)

// Fingerprint groups dead letters that failed for the same reason: it is
// the first 16 hex digits of a SHA-256 over the error code, the event type
// (from the envelope, "" when there is none), the normalized error message
// and the top meaningful stack frame without line numbers. Ids, numbers
// and quoted values in the message do not change it, so a thousand
// "order 4711 not found" failures are one group; a different code, event
// type or throwing method is a different group.
func Fingerprint(dl DeadLetter) string {
	typ := ""
	if dl.Envelope != nil {
		typ = dl.Envelope.Type
	}
	h := sha256.New()
	for _, part := range []string{dl.Error.Code, typ, NormalizeMessage(dl.Error.Message), TopFrame(dl.Error.Stack)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Placeholders NormalizeMessage puts in place of variable parts.
const (
	placeholderString = "<str>"
	placeholderUUID   = "<uuid>"
	placeholderHex    = "<hex>"
	placeholderNumber = "<num>"
)

var uuidRE = regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// NormalizeMessage reduces an error message to its shape, for grouping
// (Fingerprint): MessageTitle, lower-cased, so that "Order 4711 not
// found" and "order 99 not found" are one failure.
func NormalizeMessage(msg string) string {
	return strings.ToLower(MessageTitle(msg))
}

// MessageTitle is an error message as a failure group's title: its shape,
// with the case of its words kept (a Kafka Connect message names Java
// classes) — quoted values ('…', "…", `…`) become <str>, UUIDs <uuid>, hex
// ids (0x…, or 8+ hex digits with a digit among them, or 16+ hex digits)
// <hex>, numbers (also with a unit: 250ms) and digit runs of 4+ inside
// words (ord12345) <num>; whitespace collapsed. Short digits inside words
// stay: v1, http2 and sha256 are wording; so do SMTP status codes (550
// 5.1.1: a reply code and its enhanced code, RFC 3463), which say what
// failed and whether a retry can help. Lower-cased, it is NormalizeMessage.
func MessageTitle(msg string) string {
	s := replaceQuoted(msg)
	s = uuidRE.ReplaceAllString(s, placeholderUUID)
	s = replaceTokensKeepingSMTP(s)
	return strings.Join(strings.Fields(s), " ")
}

// smtpCodeRE is an SMTP reply code with its enhanced status code: "550
// 5.1.1", "450-4.2.1" (a continuation line).
var smtpCodeRE = regexp.MustCompile(`[245][0-9]{2}[ -][245]\.[0-9]{1,3}\.[0-9]{1,3}`)

// replaceTokensKeepingSMTP is replaceTokens around the SMTP status codes
// of s, which it keeps as they are. A code must stand alone: not part of
// a longer number, word or dotted version.
func replaceTokensKeepingSMTP(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range smtpCodeRE.FindAllStringIndex(s, -1) {
		before := m[0] > 0 && (isAlnum(s[m[0]-1]) || s[m[0]-1] == '.')
		after := m[1] < len(s) && (isAlnum(s[m[1]]) || s[m[1]] == '.' && m[1]+1 < len(s) && isAlnum(s[m[1]+1]))
		if before || after {
			continue
		}
		b.WriteString(replaceTokens(s[last:m[0]]))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(replaceTokens(s[last:]))
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// replaceQuoted replaces quoted values. A quote opens only where it does
// not follow a letter or digit and closes only where it is not followed by
// one, so apostrophes ("can't", "users'") are left alone.
func replaceQuoted(s string) string {
	var b strings.Builder
	// Once a quote character has no closing match, none later can have
	// one either: remembering that keeps this linear on hostile input.
	unclosed := map[byte]bool{}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c == '\'' || c == '"' || c == '`') && !unclosed[c] && (i == 0 || !isAlnum(s[i-1])) {
			if j := closingQuote(s, i+1, c); j > 0 {
				b.WriteString(placeholderString)
				i = j
				continue
			}
			unclosed[c] = true
		}
		b.WriteByte(c)
	}
	return b.String()
}

func closingQuote(s string, from int, q byte) int {
	for j := from; j < len(s); j++ {
		if s[j] == q && (j+1 == len(s) || !isAlnum(s[j+1])) {
			return j
		}
	}
	return -1
}

// replaceTokens rewrites each run of ASCII letters and digits that is an
// id or a number.
func replaceTokens(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		b.WriteString(normalizeToken(s[i:j]))
		i = j
	}
	return b.String()
}

func normalizeToken(t string) string {
	digits, hexOnly := 0, true
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
		default:
			hexOnly = false
		}
	}
	switch {
	case digits == len(t):
		return placeholderNumber
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") && isHex(t[2:]):
		return placeholderHex
	case hexOnly && (len(t) >= 8 && digits > 0 || len(t) >= 16):
		return placeholderHex
	case t[0] >= '0' && t[0] <= '9':
		// A number with a unit or suffix: 250ms, 3rd, 5xx.
		i := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		return placeholderNumber + normalizeToken(t[i:])
	case digits < 4:
		return t // v1, sha256, http2: part of the wording
	}
	// Long digit runs inside a word are ids: ord12345 → ord<num>.
	var b strings.Builder
	for i := 0; i < len(t); {
		j := i
		for j < len(t) && t[j] >= '0' && t[j] <= '9' {
			j++
		}
		if j-i >= 4 {
			b.WriteString(placeholderNumber)
			i = j
			continue
		}
		if j == i {
			j++
		}
		b.WriteString(t[i:j])
		i = j
	}
	return b.String()
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// Frames of runtimes and frameworks, skipped when looking for the frame
// that says where the application failed.
var frameworkFrames = []string{
	// JVM
	"java.", "javax.", "jdk.", "sun.", "com.sun.", "kotlin.", "kotlinx.", "scala.",
	"org.springframework.", "org.apache.kafka.", "io.micrometer.", "reactor.", "io.netty.",
	"com.fasterxml.jackson.",
	// .NET
	"System.", "Microsoft.", "MassTransit.", "Polly.", "RabbitMQ.Client.",
	// Go
	"runtime.", "runtime/debug.", "testing.", "panic(",
	// Node
	"node:", "internal/", "process.", "processTicksAndRejections",
}

func isFrameworkFrame(f string) bool {
	for _, p := range frameworkFrames {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}

var (
	pythonFrameRE = regexp.MustCompile(`^\s*File "([^"]+)", line \d+, in (\S+)`)
	lineSuffixRE  = regexp.MustCompile(`(:\d+)+$`)
)

// TopFrame returns the first meaningful frame of a Java, .NET, Go, Python
// or Node stack trace, without file positions or line numbers (so that a
// rebuild does not split a group), or "" when the stack has no frames.
// "Meaningful" skips runtime and framework frames unless there is nothing
// else. For Java the innermost "Caused by:" section is used: that is where
// the failure was thrown. For Python the innermost frame is the last one.
// For Go the frames above the panic call are skipped.
func TopFrame(stack string) string {
	if stack == "" {
		return ""
	}
	lines := strings.Split(strings.ReplaceAll(stack, "\r\n", "\n"), "\n")
	if strings.Contains(stack, "Traceback (most recent call last):") {
		return pythonTopFrame(lines)
	}
	if f := atTopFrame(lines); f != "" {
		return f
	}
	return goTopFrame(lines)
}

// atTopFrame handles the "at X" stacks of Java, .NET and Node.
func atTopFrame(lines []string) string {
	var sections [][]string
	cur := []string{}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "Caused by:") {
			if len(cur) > 0 {
				sections = append(sections, cur)
			}
			cur = []string{}
			continue
		}
		rest, ok := strings.CutPrefix(t, "at ")
		if !ok {
			continue
		}
		if f := atFrameName(rest); validFrameName(f) {
			cur = append(cur, f)
		}
	}
	if len(cur) > 0 {
		sections = append(sections, cur)
	}
	if len(sections) == 0 {
		return ""
	}
	return firstMeaningful(sections[len(sections)-1])
}

// atFrameName strips file, line and arguments from one "at" frame:
//
//	com.acme.Listener.on(Listener.java:57)           → com.acme.Listener.on
//	java.base/java.lang.Thread.run(Thread.java:1583) → java.lang.Thread.run
//	Acme.Notify.Consumer.Consume(ConsumeContext`1 context) in /src/C.cs:line 48
//	                                                 → Acme.Notify.Consumer.Consume
//	Object.handle (/app/src/handler.js:10:5)         → Object.handle
func atFrameName(f string) string {
	if i := strings.Index(f, " in "); i >= 0 && strings.Contains(f[i:], ":line ") {
		f = f[:i]
	}
	if i := strings.Index(f, " ("); i >= 0 {
		f = f[:i]
	}
	if i := strings.Index(f, "("); i >= 0 {
		f = f[:i]
		if j := strings.LastIndex(f, "/"); j >= 0 { // Java module or class loader
			f = f[j+1:]
		}
	}
	return lineSuffixRE.ReplaceAllString(strings.TrimSpace(f), "")
}

// validFrameName rejects text that merely starts with "at", such as
// Jackson's " at [Source: …; line: 1, column: 9]" continuation lines.
func validFrameName(f string) bool {
	if f == "" || strings.ContainsAny(f, ";\"") {
		return false
	}
	c := f[0]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c == '/'
}

func firstMeaningful(frames []string) string {
	for _, f := range frames {
		if !isFrameworkFrame(f) {
			return f
		}
	}
	if len(frames) > 0 {
		return frames[0]
	}
	return ""
}

func pythonTopFrame(lines []string) string {
	type frame struct {
		name string
		lib  bool
	}
	var frames []frame
	for _, l := range lines {
		m := pythonFrameRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		file := m[1]
		lib := strings.Contains(file, "site-packages") || strings.Contains(file, "/lib/python") || strings.HasPrefix(file, "<")
		// The base name only: the same code deployed under another
		// directory is the same frame.
		frames = append(frames, frame{name: path.Base(file) + " in " + m[2], lib: lib})
	}
	// Python prints the innermost frame last.
	for i := len(frames) - 1; i >= 0; i-- {
		if !frames[i].lib {
			return frames[i].name
		}
	}
	if len(frames) > 0 {
		return frames[len(frames)-1].name
	}
	return ""
}

// goTopFrame reads a Go goroutine dump: a function line followed by a
// tab-indented "file.go:line" line.
func goTopFrame(lines []string) string {
	var frames []string
	for i := 0; i+1 < len(lines); i++ {
		fn, next := lines[i], lines[i+1]
		if fn == "" || fn[0] == '\t' || fn[0] == ' ' || !strings.HasPrefix(next, "\t") || !strings.Contains(next, ".go:") {
			continue
		}
		if strings.HasPrefix(fn, "created by ") {
			continue
		}
		if j := strings.LastIndex(fn, "("); j > 0 {
			if strings.HasPrefix(fn, "panic(") {
				fn = "panic("
			} else {
				fn = fn[:j]
			}
		}
		frames = append(frames, fn)
	}
	for i, f := range frames {
		if f == "panic(" {
			frames = frames[i+1:]
			break
		}
	}
	return firstMeaningful(frames)
}
