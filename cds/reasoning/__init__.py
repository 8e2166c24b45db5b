"""Pure clinical reasoning: PatientRecord in, Assessment out, no I/O."""
