package delivery_test

import (
	"regexp"
	"strings"
	"testing"

	"switchyard/delivery"
)

func TestNormalizeMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order 4711 not found", "order <num> not found"},
		{"event 9d45d438-0e6f-46df-a270-1eeabdb227e1 already processed", "event <uuid> already processed"},
		{"Event 9D45D438-0E6F-46DF-A270-1EEABDB227E1 already processed", "event <uuid> already processed"},
		{"trace e8f543ca0aee94038dbcc16ac96bc10b has no span 1560b39a8ea09fb6", "trace <hex> has no span <hex>"},
		{"segfault at 0x7ffd5e8c", "segfault at <hex>"},
		{"Template 'order-confirmation' for locale 'de-DE' was not found.", "template <str> for locale <str> was not found."},
		{`unknown field "customerId" in payload`, "unknown field <str> in payload"},
		{"column `total_minor` is null", "column <str> is null"},
		{"can't reach host, the users' data stays", "can't reach host, the users' data stays"},
		{"  timeout\n\tafter   30s  ", "timeout after <num>s"},
		{"took 12.5ms > 250ms", "took <num>.<num>ms > <num>ms"},
		{"HTTP2 stream v1 rejected, sha256 mismatch", "http2 stream v1 rejected, sha256 mismatch"},
		{"no invoice for ord12345", "no invoice for ord<num>"},
		{"Card declined for order ord-8841: issuer response 51 (insufficient funds)", "card declined for order ord-<num>: issuer response <num> (insufficient funds)"},
		{"quantity must be >= 0 but was -3", "quantity must be >= <num> but was -<num>"},
		{"deadbeef and facade are words", "deadbeef and facade are words"},
		{"unterminated 'quote stays", "unterminated 'quote stays"},
		// SMTP status codes say what failed: 550 (permanent) and 450
		// (try again) are different failures.
		{"550 5.1.1 mailbox unavailable", "550 5.1.1 mailbox unavailable"},
		{"450 4.2.1 Mailbox busy, retry in 300s", "450 4.2.1 mailbox busy, retry in <num>s"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := delivery.NormalizeMessage(tt.in); got != tt.want {
			t.Errorf("NormalizeMessage(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// A failure group's title is the message's shape with its case kept (a
// Kafka Connect message names Java classes and settings) and SMTP status
// codes kept; lower-cased it is the shape the fingerprint groups by.
func TestMessageTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order 4711 not found", "Order <num> not found"},
		{"Event 9D45D438-0E6F-46DF-A270-1EEABDB227E1 already processed", "Event <uuid> already processed"},
		{"segfault at 0X7FFD5E8C, trace E8F543CA0AEE94038DBCC16AC96BC10B", "segfault at <hex>, trace <hex>"},
		{"Template 'order-confirmation' for locale 'de-DE' was not found.", "Template <str> for locale <str> was not found."},
		// Kafka Connect (__connect.errors.exception.message).
		{"Tolerance exceeded in error handler", "Tolerance exceeded in error handler"},
		{"Converting byte[] to Kafka Connect data failed due to serialization error of topic orders.v1: ",
			"Converting byte[] to Kafka Connect data failed due to serialization error of topic orders.v1:"},
		{`JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain additional fields.`,
			"JsonConverter with schemas.enable requires <str> and <str> fields and may not contain additional fields."},
		{"org.apache.kafka.connect.errors.RetriableException: Failed to write 500 records to PostgreSQL",
			"org.apache.kafka.connect.errors.RetriableException: Failed to write <num> records to PostgreSQL"},
		// SMTP: a reply code with its enhanced status code, also on a
		// continuation line, stays; numbers around it do not.
		{"550 5.1.1 mailbox unavailable", "550 5.1.1 mailbox unavailable"},
		{"550-5.1.1 The email account that you tried to reach does not exist", "550-5.1.1 The email account that you tried to reach does not exist"},
		{"smtp; 452 4.2.2 Mailbox full (quota 1024 MB)", "smtp; 452 4.2.2 Mailbox full (quota <num> MB)"},
		{"RCPT TO failed: 550 5.7.1 Relaying denied after 3 attempts", "RCPT TO failed: 550 5.7.1 Relaying denied after <num> attempts"},
		// Not SMTP codes: a version, a longer number, a code inside a word.
		{"client 2.8.1 unsupported", "client <num>.<num>.<num> unsupported"},
		{"error 5550 5.1.1", "error <num> <num>.<num>.<num>"},
		{"build 550 5.1.1.4 failed", "build <num> <num>.<num>.<num>.<num> failed"},
		{"v550 5.1.1x", "v550 <num>.<num>.<num>x"},
		{"", ""},
	}
	for _, tt := range tests {
		got := delivery.MessageTitle(tt.in)
		if got != tt.want {
			t.Errorf("MessageTitle(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if n := delivery.NormalizeMessage(tt.in); n != strings.ToLower(got) {
			t.Errorf("NormalizeMessage(%q) = %q, not the title lower-cased", tt.in, n)
		}
	}
}

const (
	javaStack = `org.springframework.kafka.listener.ListenerExecutionFailedException: Listener method threw exception
	at org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.decorateException(KafkaMessageListenerContainer.java:2996)
	at java.base/java.lang.Thread.run(Thread.java:1583)
Caused by: com.acme.billing.payment.PaymentDeclinedException: Card declined for order ord-8841
	at com.acme.billing.payment.StripeGateway.capture(StripeGateway.java:142)
	at com.acme.billing.listener.OrderCreatedListener.onOrderCreated(OrderCreatedListener.java:48)
	at java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)
	... 10 common frames omitted
`
	jacksonStack = `org.apache.kafka.connect.errors.DataException: Converting byte[] to Kafka Connect data failed
	at org.apache.kafka.connect.json.JsonConverter.toConnectData(JsonConverter.java:333)
Caused by: com.fasterxml.jackson.core.JsonParseException: Unrecognized token 'order_id'
 at [Source: (byte[])"order_id=ord-8841"; line: 1, column: 9]
	at com.fasterxml.jackson.core.JsonParser._constructError(JsonParser.java:2477)
	at com.fasterxml.jackson.core.base.ParserMinimalBase._reportError(ParserMinimalBase.java:760)
`
	dotnetStack = `System.InvalidOperationException: Template 'order-confirmation' was not found.
   at System.Collections.Generic.Dictionary` + "`" + `2.get_Item(TKey key)
   at Acme.Notify.Email.TemplateRenderer.RenderAsync(String templateId, CultureInfo culture) in /src/Acme.Notify/Email/TemplateRenderer.cs:line 57
   at Acme.Notify.Email.SendEmailConsumer.Consume(ConsumeContext` + "`" + `1 context) in /src/Acme.Notify/Email/SendEmailConsumer.cs:line 41
   at MassTransit.DependencyInjection.ScopeConsumerFactory` + "`" + `1.Send[TMessage](ConsumeContext` + "`" + `1 context, IPipe` + "`" + `1 next) in /_/src/MassTransit/ScopeConsumerFactory.cs:line 22`
	goStack = `goroutine 87 [running]:
runtime/debug.Stack()
	/usr/local/go/src/runtime/debug/stack.go:26 +0x5e
switchyard/delivery/kafka.(*Consumer).invoke.func1()
	/src/switchyard/delivery/kafka/consumer.go:214 +0x9c
panic({0x8a3f20?, 0xc0001a2f30?})
	/usr/local/go/src/runtime/panic.go:792 +0x132
acme/billing/internal/charge.(*Service).Capture(0xc000214000, {0xa41c18, 0xc0003c6ea0})
	/src/billing/internal/charge/service.go:118 +0x2f4
acme/billing/internal/consumer.(*OrderCreated).Handle(0xc00012e0a0, {0xa41c18, 0xc0003c6ea0})
	/src/billing/internal/consumer/order_created.go:52 +0x1b8
created by switchyard/delivery/kafka.(*Consumer).Run in goroutine 1
	/src/switchyard/delivery/kafka/consumer.go:160 +0x2a5
`
	pythonStack = `Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.12/site-packages/aiokafka/consumer.py", line 410, in __anext__
    return await self.getone()
  File "/srv/app/notify/handlers.py", line 88, in handle_email_requested
    template = registry[event.payload["template"]]
  File "/usr/lib/python3.12/collections/__init__.py", line 1121, in __getitem__
    raise KeyError(key)
KeyError: 'order-confirmation'
`
	nodeStack = `TypeError: Cannot read properties of undefined (reading 'sku')
    at mapLine (/app/src/orders/mapper.js:41:23)
    at Array.map (<anonymous>)
    at Object.handle (/app/src/orders/handler.js:17:30)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)`
)

func TestTopFrame(t *testing.T) {
	tests := []struct{ name, stack, want string }{
		{"java innermost cause, application frame", javaStack, "com.acme.billing.payment.StripeGateway.capture"},
		{"java continuation lines are not frames", jacksonStack, "com.fasterxml.jackson.core.JsonParser._constructError"},
		{".NET skips System frames and drops file and line", dotnetStack, "Acme.Notify.Email.TemplateRenderer.RenderAsync"},
		{"go skips runtime and the recover func above panic", goStack, "acme/billing/internal/charge.(*Service).Capture"},
		{"python innermost application frame", pythonStack, "handlers.py in handle_email_requested"},
		{"node", nodeStack, "mapLine"},
		{"no frames", "something went wrong", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := delivery.TopFrame(tt.stack); got != tt.want {
				t.Errorf("TopFrame = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	envOf := func(typ string) *delivery.Envelope { return &delivery.Envelope{Type: typ} }
	base := delivery.DeadLetter{
		Envelope: envOf("orders.order.created.v1"),
		Error: delivery.ErrorInfo{
			Code:    "PaymentDeclinedException",
			Message: "Card declined for order ord-8841: issuer response 51",
			Stack:   javaStack,
		},
	}
	with := func(f func(*delivery.DeadLetter)) delivery.DeadLetter {
		dl := base
		f(&dl)
		return dl
	}
	fp := delivery.Fingerprint(base)
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(fp) {
		t.Fatalf("Fingerprint = %q, want 16 lower-case hex digits", fp)
	}
	// Pinned: stored groups are keyed by this value, so a change to the
	// algorithm regroups every dead letter an operator has triaged.
	if want := "012f8ac92540c826"; fp != want {
		t.Errorf("Fingerprint(base) = %s, want %s (did the algorithm change?)", fp, want)
	}

	same := []struct {
		name string
		dl   delivery.DeadLetter
	}{
		{"other order id and response", with(func(d *delivery.DeadLetter) {
			d.Error.Message = "Card declined for order ord-9120: issuer response 05"
		})},
		{"other line numbers", with(func(d *delivery.DeadLetter) {
			d.Error.Stack = strings.ReplaceAll(strings.ReplaceAll(javaStack, "StripeGateway.java:142", "StripeGateway.java:150"), "Thread.java:1583", "Thread.java:1595")
		})},
		{"other whitespace and case", with(func(d *delivery.DeadLetter) {
			d.Error.Message = "card declined  for order ORD-1:\tissuer response 51"
		})},
		{"other payload, same type", with(func(d *delivery.DeadLetter) {
			d.Envelope = &delivery.Envelope{Type: "orders.order.created.v1", ID: "other"}
			d.Payload = []byte("different")
		})},
	}
	for _, tt := range same {
		if got := delivery.Fingerprint(tt.dl); got != fp {
			t.Errorf("%s: Fingerprint = %s, want the same %s", tt.name, got, fp)
		}
	}

	different := []struct {
		name string
		dl   delivery.DeadLetter
	}{
		{"other code", with(func(d *delivery.DeadLetter) { d.Error.Code = "PaymentTimeoutException" })},
		{"other event type", with(func(d *delivery.DeadLetter) { d.Envelope = envOf("orders.order.updated.v1") })},
		{"no envelope", with(func(d *delivery.DeadLetter) { d.Envelope = nil })},
		{"other throwing method", with(func(d *delivery.DeadLetter) {
			d.Error.Stack = strings.ReplaceAll(javaStack, "StripeGateway.capture", "StripeGateway.refund")
		})},
		{"other wording", with(func(d *delivery.DeadLetter) {
			d.Error.Message = "Card expired for order ord-8841: issuer response 51"
		})},
		{"no stack", with(func(d *delivery.DeadLetter) { d.Error.Stack = "" })},
	}
	for _, tt := range different {
		if got := delivery.Fingerprint(tt.dl); got == fp {
			t.Errorf("%s: Fingerprint = %s, want it to differ from the base", tt.name, got)
		}
	}
}

// Adversarial input must not make normalization quadratic or panic.
func TestNormalizeMessageHostile(t *testing.T) {
	s := strings.Repeat("x 'x ", 200000) + strings.Repeat("\"", 1000) + "\xff\xfe"
	if got := delivery.NormalizeMessage(s); got == "" {
		t.Fatal("empty normalization of a non-empty message")
	}
}
