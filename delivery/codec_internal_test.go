package delivery

import "testing"

func TestSimpleTypeName(t *testing.T) {
	tests := map[string]string{
		"com.acme.billing.payment.PaymentDeclinedException":                        "PaymentDeclinedException",
		"com.acme.Outer$InnerException":                                            "InnerException",
		"System.InvalidOperationException":                                         "InvalidOperationException",
		"Acme.Notify.TemplateException`1[[System.String, System.Private.CoreLib]]": "TemplateException",
		"Acme.Notify.Outer+NestedException":                                        "NestedException",
		"*billing.DeclinedError":                                                   "DeclinedError",
		"ValueError":                                                               "ValueError",
		"":                                                                         "",
	}
	for in, want := range tests {
		if got := simpleTypeName(in); got != want {
			t.Errorf("simpleTypeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJavaNumbers(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		wantInt  int64
		wantLong int64
	}{
		{"binary int 3", []byte{0, 0, 0, 3}, 3, -1},
		{"binary long", []byte{0, 0, 0, 0, 0, 2, 0xd0, 0x93}, -1, 184467},
		{"decimal", []byte("1234"), 1234, 1234},
		{"negative decimal", []byte("-1"), -1, -1},
		{"negative binary int", []byte{0xff, 0xff, 0xff, 0xfe}, -2, -1},
		{"wrong length", []byte{1, 2, 3}, -1, -1},
		{"empty", nil, -1, -1},
	}
	for _, tt := range tests {
		if got := javaInt(tt.in, -1); got != tt.wantInt {
			t.Errorf("%s: javaInt = %d, want %d", tt.name, got, tt.wantInt)
		}
		if got := javaLong(tt.in, -1); got != tt.wantLong {
			t.Errorf("%s: javaLong = %d, want %d", tt.name, got, tt.wantLong)
		}
	}
}
