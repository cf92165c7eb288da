package ce

// Problem is one reason the data of an event does not match its schema:
// Path is a JSON path from the event ("data/commit"), Message says what is
// wrong there. The catalog (schemas) and the CDEvents validator
// (producers/cdevents) report their problems with it, so the receiver
// answers both alike.
type Problem struct {
	Path    string `json:"field"`
	Message string `json:"message"`
}
