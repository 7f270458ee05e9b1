package web

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"switchyard/delivery"
)

// defaultMaxBody caps a decoded form or JSON body: a job of 10,000 ids
// or an edited envelope fits many times over.
const defaultMaxBody = 4 << 20

// limitBody makes every request body that a handler, the CSRF check or
// fiber's own Body() can read safe to read. It runs before authentication,
// because the CSRF check parses forms.
//
// A body sent with a Content-Encoding is decoded here, once, streaming,
// and refused with 413 as soon as the decoded bytes pass the route's
// limit: a few hundred bytes of gzip can stand for gigabytes of zeros,
// and fiber's Body() would inflate all of it (every coding of a stacked
// "gzip, gzip" in turn) before any handler could check a length. The
// decoded body then replaces the encoded one and the header goes, so
// nothing downstream decodes again. Stacked or unknown codings are
// refused with 415. A plain body is held to the same limit.
func (s *Server) limitBody(c *fiber.Ctx) error {
	req := c.Request()
	limit := s.maxBody
	if isIngest(c.Path()) {
		limit = s.maxOTLPBody
	}
	coding, err := contentCoding(&req.Header)
	if err != nil {
		return s.fail(c, err)
	}
	if coding == "" {
		if len(req.Body()) > limit {
			return s.fail(c, tooLarge(limit))
		}
		return c.Next()
	}
	decoded, err := decodeBody(coding, req.Body(), limit)
	if err != nil {
		return s.fail(c, err)
	}
	req.SetBodyRaw(decoded)
	req.Header.Del(fiber.HeaderContentEncoding)
	req.Header.SetContentLength(len(decoded))
	return c.Next()
}

// isIngest: the OTLP receivers take exports far larger than any form.
func isIngest(path string) bool { return strings.HasPrefix(path, "/v1/") }

func tooLarge(limit int) error {
	return &delivery.Error{Code: delivery.ETOOLARGE, Message: "the request body is larger than this endpoint accepts (after decompression)",
		Details: map[string]any{"limit_bytes": limit}}
}

// contentCoding returns the one content coding of the request ("" for
// none or identity). Every Content-Encoding line counts: a coding listed
// twice, or two codings, is a stack, which no client of the console needs
// and which multiplies a bomb's ratio.
func contentCoding(h *fasthttp.RequestHeader) (string, error) {
	var codings []string
	h.VisitAll(func(k, v []byte) {
		if !strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			return
		}
		for _, part := range strings.Split(string(v), ",") {
			part = strings.ToLower(strings.TrimSpace(part))
			if part != "" && part != "identity" {
				codings = append(codings, part)
			}
		}
	})
	switch {
	case len(codings) == 0:
		return "", nil
	case len(codings) > 1:
		return "", &delivery.Error{Code: delivery.EUNSUPPORTED, Message: "stacked content encodings are not accepted: encode the body once (gzip, deflate or br)",
			Details: map[string]any{"content_encoding": strings.Join(codings, ", ")}}
	}
	switch c := codings[0]; c {
	case "gzip", "x-gzip", "deflate", "br":
		return c, nil
	default:
		return "", &delivery.Error{Code: delivery.EUNSUPPORTED, Message: "unsupported content encoding: send gzip, deflate, br or no encoding",
			Details: map[string]any{"content_encoding": truncateText(c, 40)}}
	}
}

// decodeBody inflates raw, reading at most limit+1 decoded bytes: memory
// stays bounded by the limit whatever the ratio. Errors: ETOOLARGE past
// the limit, EINVALID for a body that is not in its coding.
func decodeBody(coding string, raw []byte, limit int) ([]byte, error) {
	corrupt := delivery.Errorf(delivery.EINVALID, "the request body is not valid %s", coding)
	var r io.Reader
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, corrupt
		}
		defer zr.Close()
		r = zr
	case "deflate":
		// HTTP's deflate is zlib-wrapped; some clients send it raw.
		if zr, err := zlib.NewReader(bytes.NewReader(raw)); err == nil {
			defer zr.Close()
			r = zr
		} else {
			fr := flate.NewReader(bytes.NewReader(raw))
			defer fr.Close()
			r = fr
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(raw))
	}
	// Grow from a modest start: most bodies are small, and a bomb stops at
	// the limit either way.
	buf := bytes.NewBuffer(make([]byte, 0, min(limit+1, max(4*len(raw), 64<<10))))
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if n > int64(limit) {
		return nil, tooLarge(limit)
	}
	if err != nil {
		return nil, corrupt
	}
	return buf.Bytes(), nil
}
