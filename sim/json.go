package sim

import (
	"encoding/json"
	"fmt"
)

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sim: encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}
