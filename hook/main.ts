// The OCI hook front door (tsrun hook <stage>): see the hook issue. Until it lands, every stage is
// refused with a clear message so a runtime does not start a container tsrun did not wire.
export async function hookMain(stage: string): Promise<number> {
  process.stderr.write(`tsrun: hook ${stage}: the OCI hook is not available in this build\n`);
  return 1;
}
