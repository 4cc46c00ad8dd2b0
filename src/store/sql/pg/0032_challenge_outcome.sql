-- SPDX-License-Identifier: MIT
-- A challenge's outcome as the phone approval page gives it: declined_at when the
-- person declined it on the approving device (it can then neither be approved nor
-- used), and approved_with how it was approved ('signature': a device key;
-- 'passkey': a WebAuthn assertion with user verification).
ALTER TABLE challenges ADD COLUMN declined_at BIGINT;
ALTER TABLE challenges ADD COLUMN approved_with TEXT;
