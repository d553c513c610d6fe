package schemas

import "embed"

// The Avro schemas shipped with the connector: the Debezium change events of the demo CRM's
// customers and orders tables (with their key schemas), and a flat customer row for throughput
// benchmarks. internal/workload generates events of these schemas; the demo pipelines read
// them. They are read-only: nothing may assign to these variables.
var (
	//go:embed avro/customers-value.avsc
	CustomerValue string
	//go:embed avro/customers-key.avsc
	CustomerKey string
	//go:embed avro/orders-value.avsc
	OrderValue string
	//go:embed avro/orders-key.avsc
	OrderKey string
	//go:embed avro/customer-flat.avsc
	CustomerFlat string
)

// FS holds the same files under avro/, for configuration that names a shipped schema by file
// (avro/customers-value.avsc).
//
//go:embed avro/*.avsc
var FS embed.FS
