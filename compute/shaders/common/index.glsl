// index.glsl: flat invocation index for 1-D launches spread over a 2-D grid, because
// some devices cap the x workgroup count at 65535 (rf_launch_1d on the C side).
uint flat_index()
{
	return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
