// index.glsl: flat invocation and workgroup indices for 1-D launches spread over a 2-D
// grid, because some devices cap the x workgroup count at 65535 (rf_launch_1d and
// rf_launch_groups on the C side).
uint flat_index()
{
	return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

uint flat_group()
{
	return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}
