package sim

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		dataType, value, want string
	}{
		{"currency", "1250.75", "$1,250.75"},
		{"currency", "299.99", "$299.99"},
		{"currency", "0", "$0.00"},
		{"currency", "1234567", "$1,234,567.00"},
		{"currency", "-42.5", "-$42.50"},
		{"currency", "0.125", "$0.13"}, // exact half rounds away from zero
		{"currency", "-0.001", "$0.00"},
		{"currency", "+10", "$10.00"},
		{"currency", "$1,250.75", "$1,250.75"}, // already formatted
		{"currency", "1,250.75", "1,250.75"},
		{"currency", "12.", "12."},
		{"currency", "abc", "abc"},
		{"number", "1234567.891", "1,234,567.891"},
		{"number", "999", "999"},
		{"number", "1000", "1,000"},
		{"number", "-1000000", "-1,000,000"},
		{"number", "007", "7"},
		{"number", "1e6", "1e6"},
		{"date", "2024-07-10", "July 10, 2024"},
		{"date", "2024-01-15T10:30:00Z", "January 15, 2024"},
		{"date", "2024-02-30", "2024-02-30"},
		{"date", "July 10, 2024", "July 10, 2024"},
		{"phone", "16175551234", "+1 (617) 555-1234"},
		{"phone", "+16175551234", "+1 (617) 555-1234"},
		{"phone", "6175551234", "(617) 555-1234"},
		{"phone", "+6175551234", "+6175551234"},
		{"phone", "441632960961", "441632960961"},
		{"phone", "(617) 555-1234", "(617) 555-1234"},
		{"time", "14:30", "2:30 PM"},
		{"time", "14:30:00", "2:30 PM"},
		{"time", "00:05", "12:05 AM"},
		{"time", "12:00", "12:00 PM"},
		{"time", "2:30 PM", "2:30 PM"},
		{"time", "25:00", "25:00"},
		{"text", "1250.75", "1250.75"},
		{"", "2024-07-10", "2024-07-10"},
		{"unknown", "14:30", "14:30"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.dataType, tt.value); got != tt.want {
			t.Errorf("FormatValue(%q, %q) = %q, want %q", tt.dataType, tt.value, got, tt.want)
		}
	}
}

func TestAgentRows(t *testing.T) {
	vars := []api.Variable{
		{Name: "_customerId", Value: "CUST-123456", Display: true, DisplayName: "Customer ID"},
		{Name: "_hidden", Value: "x"},
		{Name: "_accountBalance", Value: "1250.75", Display: true, DisplayName: "Account Balance", DataType: "currency"},
		{Name: "_accountPin", Value: "1234", Display: true, Privacy: true, DataType: "number"},
		{Name: "_tier", Value: "Gold", Display: true},
	}
	want := []DisplayRow{
		{Name: "_customerId", Label: "Customer ID", Value: "CUST-123456"},
		{Name: "_accountBalance", Label: "Account Balance", Value: "$1,250.75", DataType: "currency"},
		{Name: "_accountPin", Label: "_accountPin", Value: Mask, DataType: "number", Private: true},
		{Name: "_tier", Label: "_tier", Value: "Gold"},
	}
	if diff := cmp.Diff(want, AgentRows(vars)); diff != "" {
		t.Errorf("AgentRows (-want +got):\n%s", diff)
	}
	if rows := AgentRows([]api.Variable{{Name: "_a", Value: "1"}}); rows != nil {
		t.Errorf("AgentRows of undisplayed variables = %+v, want none", rows)
	}
}
