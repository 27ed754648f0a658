import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isMachineRole,
  ROLE_SAFETY_CLASSES,
  ROLES,
  requiresQuorum,
  roleAllows,
  SAFETY_CLASSES,
} from '../../protocol/roles.ts';

describe('roles', () => {
  // The matrix of tokens.md §7, spelled out so a change to the data is a visible change here.
  const expected: Record<string, string> = {
    viewer: 'read_only',
    operator: 'read_only reversible',
    actuator: 'read_only reversible physical_actuation',
    approver: 'read_only',
    admin: 'read_only',
    device: '',
    gateway: '',
  };
  for (const role of ROLES) {
    it(`${role} may invoke: ${expected[role] || 'nothing'}`, () => {
      assert.equal(SAFETY_CLASSES.filter((c) => roleAllows(role, c)).join(' '), expected[role]);
      assert.deepEqual(
        [...ROLE_SAFETY_CLASSES[role]],
        SAFETY_CLASSES.filter((c) => roleAllows(role, c)),
      );
    });
  }

  it('only physical_actuation needs a quorum', () => {
    assert.deepEqual(SAFETY_CLASSES.filter(requiresQuorum), ['physical_actuation']);
  });

  it('an unknown role is allowed nothing', () => {
    assert.equal(roleAllows('root' as never, 'read_only'), false);
  });

  it('the matrix cannot be changed at run time', () => {
    assert.throws(() => {
      (ROLE_SAFETY_CLASSES.viewer as string[]).push('physical_actuation');
    }, TypeError);
  });

  it('device and gateway are the machine roles', () => {
    assert.deepEqual(ROLES.filter(isMachineRole), ['device', 'gateway']);
  });
});
