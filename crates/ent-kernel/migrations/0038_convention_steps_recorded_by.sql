-- A step recorded by the operator on a user's behalf (`entctl conventions sign --as`: a
-- signature received on paper) says who recorded it, `cli:<login> pour user:<email>`, as the
-- audit log does; NULL for a step its signer took on the platform.
ALTER TABLE convention_steps ADD COLUMN recorded_by TEXT;
