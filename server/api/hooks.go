package api

import (
	"orch.dev/orch/server/api/defaulting"
	"orch.dev/orch/server/api/validation"
)

func init() {
	applyDefaults = defaulting.Default
	validateCreate = validation.ValidateCreate
	validateUpdate = validation.ValidateUpdate
	unsupportedFields = validation.Unsupported
}
