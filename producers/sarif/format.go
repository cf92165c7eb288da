package sarif

import "encoding/json"

// The parts of a SARIF 2.1.0 log that are summarized. Property bags are
// free-form (tools put any JSON in them), so they stay raw and are read
// leniently.

type sarifLog struct {
	Version *string `json:"version"`
	Runs    []run   `json:"runs"`
}

type run struct {
	Tool    tool     `json:"tool"`
	Results []result `json:"results"`
}

type tool struct {
	Driver     component   `json:"driver"`
	Extensions []component `json:"extensions"`
}

type component struct {
	Name  string `json:"name"`
	Rules []rule `json:"rules"`
}

type rule struct {
	ID                   string             `json:"id"`
	ShortDescription     message            `json:"shortDescription"`
	MessageStrings       map[string]message `json:"messageStrings"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	Properties propertyBag `json:"properties"`
}

type result struct {
	RuleID        string        `json:"ruleId"`
	RuleIndex     *int          `json:"ruleIndex"`
	Rule          *ruleRef      `json:"rule"`
	Kind          string        `json:"kind"`
	Level         string        `json:"level"`
	Message       message       `json:"message"`
	Locations     []location    `json:"locations"`
	Suppressions  []suppression `json:"suppressions"`
	BaselineState string        `json:"baselineState"`
	Properties    propertyBag   `json:"properties"`
}

// ruleRef is a reportingDescriptorReference.
type ruleRef struct {
	ID            string `json:"id"`
	Index         *int   `json:"index"`
	ToolComponent *struct {
		Name  string `json:"name"`
		Index *int   `json:"index"`
	} `json:"toolComponent"`
}

type message struct {
	Text      string   `json:"text"`
	Markdown  string   `json:"markdown"`
	ID        string   `json:"id"`
	Arguments []string `json:"arguments"`
}

type location struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
	LogicalLocations []struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName"`
	} `json:"logicalLocations"`
}

type suppression struct {
	Kind   string `json:"kind"`
	Status string `json:"status"`
}

// propertyBag is a SARIF property bag: any JSON values by name.
type propertyBag map[string]json.RawMessage

// str returns the property as a string: a JSON string, or the text of a
// JSON number.
func (p propertyBag) str(key string) string {
	raw, ok := p[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// tags returns the string elements of the "tags" property.
func (p propertyBag) tags() []string {
	raw, ok := p["tags"]
	if !ok {
		return nil
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return nil
	}
	tags := make([]string, 0, len(elems))
	for _, e := range elems {
		var s string
		if json.Unmarshal(e, &s) == nil {
			tags = append(tags, s)
		}
	}
	return tags
}

// problemSeverity returns CodeQL's problem severity, written either as the
// property "problem.severity" or nested as {"problem": {"severity": ...}}.
func (p propertyBag) problemSeverity() string {
	if s := p.str("problem.severity"); s != "" {
		return s
	}
	var problem propertyBag
	if raw, ok := p["problem"]; ok && json.Unmarshal(raw, &problem) == nil {
		return problem.str("severity")
	}
	return ""
}
