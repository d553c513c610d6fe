// Package schemas decodes Kafka record keys and values into the plain Go values that pipeline
// expressions read: Confluent-framed Avro resolved through a schema registry
// (RegistryDecoder), unframed Avro with a local schema (AvroDecoder), and JSON (JSONDecoder).
//
// Avro values are converted from goavro's native form as Convert documents: unions unwrapped,
// one integer type, decimals as float64, bytes as strings. Errors are classified once, here:
// a permanent error (IsPermanent) means the record can never be decoded and is dead-lettered;
// a transient one (IsTransient) means the registry is unavailable and the record must wait.
//
// It also embeds the Avro schemas shipped for the demo and the tests.
package schemas
