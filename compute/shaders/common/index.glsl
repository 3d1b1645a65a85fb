// index.glsl: the workgroup size and flat invocation/workgroup indices for 1-D launches
// spread over a 2-D grid, because some devices cap the x workgroup count at 65535
// (rf_launch_1d and rf_launch_groups on the C side). Include it before anything that
// uses LOCAL.
//
// The workgroup size is specialization constant 0, read as LOCAL: gl_WorkGroupSize
// must not be used, because Mesa 22.3 (lavapipe) leaves it at its unspecialized
// default of 1 when local_size_x_id is set, which made every second grid row rewrite
// the first one's elements.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint LOCAL = 64;

uint flat_index()
{
	return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL;
}

uint flat_group()
{
	return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}
