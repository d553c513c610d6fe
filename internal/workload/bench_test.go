package workload

import "testing"

// BenchmarkGenerate measures the cost of one event, to size pre-generated benchmark inputs.
func BenchmarkGenerate(b *testing.B) {
	for _, flat := range []bool{false, true} {
		name := "debezium"
		if flat {
			name = "flat"
		}
		b.Run(name, func(b *testing.B) {
			o := DefaultOptions()
			o.Framing, o.Flat = FramingAvro, flat
			g, err := NewGenerator(1, o)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				g.Next()
			}
		})
	}
}
