package schemas

import (
	"io/fs"
	"testing"

	"github.com/linkedin/goavro/v2"
)

func TestShippedSchemasCompile(t *testing.T) {
	files, err := fs.Glob(FS, "avro/*.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Errorf("FS holds %d schemas, want 5: %v", len(files), files)
	}
	for _, f := range files {
		b, err := FS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewAvroDecoder(string(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for name, s := range map[string]string{"CustomerValue": CustomerValue, "CustomerKey": CustomerKey, "OrderValue": OrderValue, "OrderKey": OrderKey, "CustomerFlat": CustomerFlat} {
		if _, err := NewAvroDecoder(s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The flat customer is the throughput benchmark's record: about 90 bytes, 12 fields.
func TestCustomerFlatSize(t *testing.T) {
	codec, err := goavro.NewCodec(CustomerFlat)
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.BinaryFromNative(nil, flatNative(123456))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 75 || len(b) > 105 {
		t.Errorf("encoded flat customer is %d bytes, want about 90", len(b))
	}
	t.Logf("flat customer: %d bytes", len(b))
}
