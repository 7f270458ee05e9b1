package rabbitmq

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
)

// HeadersFromTable converts AMQP headers to the delivery core's byte headers,
// sorted by key so that the result does not depend on Go's map order.
// Strings become their bytes, integers and floats decimal text, booleans
// "true"/"false", timestamps RFC 3339 in UTC, byte arrays stay as they are,
// and nested tables and arrays (RabbitMQ's x-death) become JSON with
// timestamps as RFC 3339 strings. A void (nil) value becomes an empty value.
func HeadersFromTable(t amqp.Table) delivery.Headers {
	if len(t) == 0 {
		return nil
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(delivery.Headers, 0, len(keys))
	for _, k := range keys {
		out = append(out, delivery.Header{Key: k, Value: fieldBytes(t[k])})
	}
	return out
}

// TableFromHeaders converts byte headers to an AMQP table of string values.
// For a key given more than once the last value wins, as in Headers.Get.
func TableFromHeaders(h delivery.Headers) amqp.Table {
	if len(h) == 0 {
		return nil
	}
	t := make(amqp.Table, len(h))
	for _, x := range h {
		t[x.Key] = string(x.Value)
	}
	return t
}

// fieldBytes renders one top-level AMQP field value.
func fieldBytes(v any) []byte {
	switch x := v.(type) {
	case nil:
		return []byte{}
	case string:
		return []byte(x)
	case []byte:
		return x
	case bool:
		return []byte(strconv.FormatBool(x))
	case time.Time:
		return []byte(x.UTC().Format(time.RFC3339))
	case amqp.Table, []any:
		b, err := json.Marshal(jsonValue(x))
		if err != nil {
			// jsonValue yields only JSON-safe values; keep the failure visible
			// rather than dropping the header.
			return []byte(fmt.Sprintf("%v", x))
		}
		return b
	default:
		if s, ok := numberText(x); ok {
			return []byte(s)
		}
		return []byte(fmt.Sprintf("%v", x))
	}
}

// numberText renders the AMQP numeric field types in decimal.
func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x), true
	case int8:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case amqp.Decimal:
		return decimalText(x), true
	}
	return "", false
}

// decimalText renders Value·10^-Scale exactly.
func decimalText(d amqp.Decimal) string {
	r := new(big.Rat).SetFrac(big.NewInt(int64(d.Value)), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale)), nil))
	return r.FloatString(int(d.Scale))
}

// jsonValue turns a nested AMQP value into one encoding/json renders as
// intended: timestamps as RFC 3339 strings, numbers as JSON numbers, and
// byte arrays as text when they are UTF-8 (base64 otherwise, json's default).
func jsonValue(v any) any {
	switch x := v.(type) {
	case amqp.Table:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonValue(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = jsonValue(e)
		}
		return a
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return x
	case amqp.Decimal:
		return json.Number(decimalText(x))
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'f', -1, 32))
	default:
		return x
	}
}
